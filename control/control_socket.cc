#include "control/control_socket.h"

#include <sys/stat.h>

#include <filesystem>
#include <system_error>

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

namespace twill {
namespace {

using boost::asio::local::stream_protocol;

// Requests larger than this are refused (and the connection closed).
constexpr size_t max_request = 1 << 20;

class session : public std::enable_shared_from_this<session> {
public:
    session(stream_protocol::socket s, const control_socket::handler& h)
        : socket_(std::move(s)), handler_(h), buffer_(max_request) {}

    void read() {
        boost::asio::async_read_until(
            socket_, buffer_, '\n',
            [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
                if (ec) {
                    return;  // closed, or a request over the limit
                }
                std::string line(boost::asio::buffers_begin(self->buffer_.data()),
                                 boost::asio::buffers_begin(self->buffer_.data()) + long(n) - 1);
                self->buffer_.consume(n);
                self->reply_ = self->handler_(line) + "\n";
                boost::asio::async_write(
                    self->socket_, boost::asio::buffer(self->reply_),
                    [self](const boost::system::error_code& wec, size_t) {
                        if (!wec) {
                            self->read();
                        }
                    });
            });
    }

private:
    stream_protocol::socket socket_;
    const control_socket::handler& handler_;
    boost::asio::streambuf buffer_;
    std::string reply_;
};

}  // namespace

control_socket::control_socket(boost::asio::io_context& io, std::string path, handler h)
    : io_(io), path_(std::move(path)), handler_(std::move(h)) {}

control_socket::~control_socket() {
    if (acceptor_) {
        boost::system::error_code ec;
        acceptor_->close(ec);
        ::unlink(path_.c_str());
    }
}

std::string control_socket::open() {
    std::error_code fec;
    std::filesystem::path dir = std::filesystem::path(path_).parent_path();
    if (!dir.empty()) {
        std::filesystem::create_directories(dir, fec);
    }
    // A socket file left by a process that is gone is replaced; a live one is not.
    if (std::filesystem::exists(path_, fec)) {
        stream_protocol::socket probe(io_);
        boost::system::error_code ec;
        probe.connect(stream_protocol::endpoint(path_), ec);
        if (!ec) {
            return fmt::format("{}: another twilld is listening there (use --socket PATH)", path_);
        }
        ::unlink(path_.c_str());
    }
    auto acceptor = std::make_unique<stream_protocol::acceptor>(io_);
    boost::system::error_code ec;
    acceptor->open(stream_protocol(), ec);
    if (!ec) {
        acceptor->bind(stream_protocol::endpoint(path_), ec);
    }
    if (!ec && ::chmod(path_.c_str(), 0600) != 0) {
        ec = boost::system::error_code(errno, boost::system::system_category());
    }
    if (!ec) {
        acceptor->listen(16, ec);
    }
    if (ec) {
        return fmt::format("{}: {}", path_, ec.message());
    }
    acceptor_ = std::move(acceptor);
    accept();
    return {};
}

void control_socket::accept() {
    acceptor_->async_accept([this](const boost::system::error_code& ec, stream_protocol::socket s) {
        if (ec) {
            return;  // closed at shutdown
        }
        std::make_shared<session>(std::move(s), handler_)->read();
        accept();
    });
}

}  // namespace twill
