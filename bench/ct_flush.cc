// twill-ct-flush: empties the IPv4 connection tracking table of the network namespace it
// runs in (what `conntrack -F` does), so that every new-flow trial of bench/kernel_nat.sh
// starts from an empty table without waiting for the kernel's garbage collection.
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

int main() {
    const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) {
        std::fprintf(stderr, "twill-ct-flush: netlink socket: %s\n", std::strerror(errno));
        return 1;
    }
    struct {
        nlmsghdr nlh;
        nfgenmsg nfg;
    } req{};
    req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(nfgenmsg));
    // A delete without a tuple deletes every entry of the family.
    req.nlh.nlmsg_type = uint16_t(NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE);
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.nlh.nlmsg_seq = 1;
    req.nfg.nfgen_family = AF_INET;
    req.nfg.version = NFNETLINK_V0;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (sendto(fd, &req, req.nlh.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof(kernel)) < 0) {
        std::fprintf(stderr, "twill-ct-flush: send: %s\n", std::strerror(errno));
        close(fd);
        return 1;
    }
    alignas(nlmsghdr) char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    close(fd);
    const auto* h = reinterpret_cast<const nlmsghdr*>(buf);
    if (n < ssize_t(NLMSG_LENGTH(sizeof(nlmsgerr))) || h->nlmsg_type != NLMSG_ERROR) {
        std::fprintf(stderr, "twill-ct-flush: no acknowledgement from the kernel\n");
        return 1;
    }
    const int err = static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
    if (err != 0) {
        std::fprintf(stderr, "twill-ct-flush: %s\n", std::strerror(-err));
        return 1;
    }
    return 0;
}
