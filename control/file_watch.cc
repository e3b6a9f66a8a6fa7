#include "control/file_watch.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace twill {

file_watch::file_watch(boost::asio::io_context& io, std::string path,
                       std::function<void()> on_change, std::chrono::milliseconds settle)
    : on_change_(std::move(on_change)), settle_(settle), fd_(io), timer_(io) {
    std::filesystem::path p = std::filesystem::absolute(path);
    dir_ = p.parent_path().string();
    name_ = p.filename().string();
}

file_watch::~file_watch() = default;

std::string file_watch::start() {
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        return fmt::format("inotify: {}", std::strerror(errno));
    }
    if (inotify_add_watch(fd, dir_.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
        int err = errno;
        ::close(fd);
        return fmt::format("cannot watch {}: {}", dir_, std::strerror(err));
    }
    fd_.assign(fd);
    read();
    return "";
}

void file_watch::read() {
    fd_.async_read_some(boost::asio::buffer(buf_), [this](const boost::system::error_code& ec, size_t n) {
        if (ec) {
            return;  // closed: the watch ends with the daemon
        }
        bool ours = false;
        for (size_t at = 0; at + sizeof(inotify_event) <= n;) {
            const auto* e = reinterpret_cast<const inotify_event*>(buf_ + at);
            ours |= e->len > 0 && name_ == e->name;
            at += sizeof(inotify_event) + e->len;
        }
        if (ours) {
            timer_.expires_after(settle_);
            timer_.async_wait([this](const boost::system::error_code& tec) {
                if (!tec) {
                    on_change_();
                }
            });
        }
        read();
    });
}

}  // namespace twill
