// Watches one file for replacement or rewrite (inotify on its directory, since editors
// and config management replace files by rename) and calls back once things settle.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace twill {

class file_watch {
public:
    // `on_change` runs on `io`'s thread, `settle` after the last event of a burst.
    file_watch(boost::asio::io_context& io, std::string path, std::function<void()> on_change,
               std::chrono::milliseconds settle = std::chrono::milliseconds(200));
    ~file_watch();
    file_watch(const file_watch&) = delete;
    file_watch& operator=(const file_watch&) = delete;

    // Starts watching; an empty string, or what went wrong.
    std::string start();

private:
    void read();

    std::string dir_, name_;
    std::function<void()> on_change_;
    std::chrono::milliseconds settle_;
    boost::asio::posix::stream_descriptor fd_;
    boost::asio::steady_timer timer_;
    alignas(8) char buf_[4096];
};

}  // namespace twill
