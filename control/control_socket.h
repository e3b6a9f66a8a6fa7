// The control socket: a unix stream socket (mode 0600) on the control thread's io_context.
// Each request is one line of JSON, each reply one line of JSON (control/README.md).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

namespace twill {

inline constexpr const char* default_socket_path = "/run/twill/twilld.sock";

class control_socket {
public:
    using handler = std::function<std::string(const std::string& request)>;

    control_socket(boost::asio::io_context& io, std::string path, handler h);
    ~control_socket();
    control_socket(const control_socket&) = delete;
    control_socket& operator=(const control_socket&) = delete;

    // Binds and starts accepting; an empty result means listening, otherwise what failed.
    [[nodiscard]] std::string open();
    const std::string& path() const { return path_; }

private:
    void accept();

    boost::asio::io_context& io_;
    std::string path_;
    handler handler_;
    std::unique_ptr<boost::asio::local::stream_protocol::acceptor> acceptor_;
};

}  // namespace twill
