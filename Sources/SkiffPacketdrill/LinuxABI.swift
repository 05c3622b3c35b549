/// Linux's numbers for what crosses the packetdrill interface: address families, socket levels
/// and option names, message flags, fcntl and ioctl commands (x86-64 / arm64 values, from the
/// Linux UAPI headers `socket.h`, `in.h`, `tcp.h`, `fcntl.h`, `sockios.h`).
enum LinuxABI {
    // Address families and socket types (Linux: `AF_*`, `SOCK_*`).
    static let AF_UNSPEC: Int32 = 0
    static let AF_INET: Int32 = 2
    static let AF_INET6: Int32 = 10
    static let SOCK_STREAM: Int32 = 1
    static let SOCK_DGRAM: Int32 = 2
    static let SOCK_NONBLOCK: Int32 = 0o4000
    static let SOCK_CLOEXEC: Int32 = 0o2000000
    static let IPPROTO_IP: Int32 = 0
    static let IPPROTO_TCP: Int32 = 6
    static let IPPROTO_UDP: Int32 = 17

    // Levels.
    static let SOL_SOCKET: Int32 = 1
    static let SOL_IP: Int32 = 0
    static let SOL_TCP: Int32 = 6

    // SOL_SOCKET options.
    static let SO_REUSEADDR: Int32 = 2
    static let SO_TYPE: Int32 = 3
    static let SO_ERROR: Int32 = 4
    static let SO_SNDBUF: Int32 = 7
    static let SO_RCVBUF: Int32 = 8
    static let SO_KEEPALIVE: Int32 = 9
    static let SO_LINGER: Int32 = 13
    static let SO_REUSEPORT: Int32 = 15
    static let SO_RCVLOWAT: Int32 = 18
    static let SO_RCVTIMEO: Int32 = 20
    static let SO_SNDTIMEO: Int32 = 21
    static let SO_MARK: Int32 = 36
    static let SO_MEMINFO: Int32 = 55
    static let SO_ZEROCOPY: Int32 = 60
    static let SO_PROTOCOL: Int32 = 38
    static let SO_DOMAIN: Int32 = 39
    static let SO_TIMESTAMPING_OLD: Int32 = 37
    static let SO_TIMESTAMPING_NEW: Int32 = 65

    // SOL_TCP options.
    static let TCP_NODELAY: Int32 = 1
    static let TCP_MAXSEG: Int32 = 2
    static let TCP_CORK: Int32 = 3
    static let TCP_KEEPIDLE: Int32 = 4
    static let TCP_KEEPINTVL: Int32 = 5
    static let TCP_KEEPCNT: Int32 = 6
    static let TCP_SYNCNT: Int32 = 7
    static let TCP_FASTOPEN: Int32 = 23
    static let TCP_FASTOPEN_CONNECT: Int32 = 30
    static let TCP_FASTOPEN_KEY: Int32 = 33
    static let TCP_FASTOPEN_NO_COOKIE: Int32 = 34
    static let TCP_INFO: Int32 = 11
    static let TCP_QUICKACK: Int32 = 12
    static let TCP_CONGESTION: Int32 = 13
    static let TCP_USER_TIMEOUT: Int32 = 18
    static let TCP_NOTSENT_LOWAT: Int32 = 25
    static let TCP_CC_INFO: Int32 = 26
    /// TCP_INQ; its control message TCP_CM_INQ has the same number.
    static let TCP_INQ: Int32 = 36
    static let TCP_CM_INQ: Int32 = 36

    // SOL_IP options.
    static let IP_TOS: Int32 = 1
    static let IP_MTU_DISCOVER: Int32 = 10
    static let IP_FREEBIND: Int32 = 15

    // Message flags (Linux: `MSG_*`).
    static let MSG_OOB: Int32 = 0x1
    static let MSG_PEEK: Int32 = 0x2
    static let MSG_DONTWAIT: Int32 = 0x40
    static let MSG_EOR: Int32 = 0x80
    static let MSG_CTRUNC: Int32 = 0x8
    static let MSG_WAITALL: Int32 = 0x100
    static let MSG_NOSIGNAL: Int32 = 0x4000
    static let MSG_MORE: Int32 = 0x8000
    static let MSG_FASTOPEN: Int32 = 0x2000_0000
    static let MSG_ZEROCOPY: Int32 = 0x400_0000
    static let MSG_ERRQUEUE: Int32 = 0x2000

    // fcntl.
    static let F_GETFD: Int32 = 1
    static let F_SETFD: Int32 = 2
    static let F_GETFL: Int32 = 3
    static let F_SETFL: Int32 = 4
    static let O_RDWR: Int32 = 2
    static let O_NONBLOCK: Int32 = 0o4000

    // ioctl (Linux: `FIONREAD` = `SIOCINQ`, `SIOCOUTQ` = `TIOCOUTQ`, `SIOCOUTQNSD`).
    static let FIONREAD: UInt = 0x541B
    static let SIOCOUTQ: UInt = 0x5411
    static let SIOCOUTQNSD: UInt = 0x894B
    static let FIONBIO: UInt = 0x5421

    // shutdown.
    static let SHUT_RD: Int32 = 0
    static let SHUT_WR: Int32 = 1
    static let SHUT_RDWR: Int32 = 2

    // epoll (Linux: `EPOLL_CTL_*`, `EPOLL*` event bits).
    static let EPOLL_CTL_ADD: Int32 = 1
    static let EPOLL_CTL_DEL: Int32 = 2
    static let EPOLL_CTL_MOD: Int32 = 3
    static let EPOLLIN: UInt32 = 0x001
    static let EPOLLPRI: UInt32 = 0x002
    static let EPOLLOUT: UInt32 = 0x004
    static let EPOLLERR: UInt32 = 0x008
    static let EPOLLHUP: UInt32 = 0x010
    static let EPOLLRDNORM: UInt32 = 0x040
    static let EPOLLWRNORM: UInt32 = 0x100
    static let EPOLLRDHUP: UInt32 = 0x2000
    static let EPOLLEXCLUSIVE: UInt32 = 1 << 28
    static let EPOLLONESHOT: UInt32 = 1 << 30
    static let EPOLLET: UInt32 = 1 << 31

    // errno values not in Skiff's `Errno`.
    static let ENOENT: Int32 = 2
    static let EINTR: Int32 = 4
    static let ENOSYS: Int32 = 38
    static let ENOTTY: Int32 = 25
    static let EAFNOSUPPORT: Int32 = 97
    static let EPROTONOSUPPORT: Int32 = 93
    static let ESOCKTNOSUPPORT: Int32 = 94
    static let EEXIST: Int32 = 17
    static let ESPIPE: Int32 = 29
}
