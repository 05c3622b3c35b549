/// A Linux errno value, as the socket calls return it.
public struct Errno: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    public static let EPERM = Errno(1)
    public static let EBADF = Errno(9)
    public static let EAGAIN = Errno(11)
    public static let ENOMEM = Errno(12)
    public static let EFAULT = Errno(14)
    public static let EINVAL = Errno(22)
    public static let EMFILE = Errno(24)
    public static let EPIPE = Errno(32)
    public static let ENOTSOCK = Errno(88)
    public static let EDESTADDRREQ = Errno(89)
    public static let EMSGSIZE = Errno(90)
    public static let EPROTOTYPE = Errno(91)
    public static let ENOPROTOOPT = Errno(92)
    public static let EOPNOTSUPP = Errno(95)
    public static let EADDRINUSE = Errno(98)
    public static let EADDRNOTAVAIL = Errno(99)
    public static let ENETUNREACH = Errno(101)
    public static let ECONNABORTED = Errno(103)
    public static let ECONNRESET = Errno(104)
    public static let ENOBUFS = Errno(105)
    public static let EISCONN = Errno(106)
    public static let ENOTCONN = Errno(107)
    public static let ETIMEDOUT = Errno(110)
    public static let ECONNREFUSED = Errno(111)
    public static let EHOSTUNREACH = Errno(113)
    public static let EALREADY = Errno(114)
    public static let EINPROGRESS = Errno(115)

    static let names: [Int32: String] = [
        1: "EPERM", 2: "ENOENT", 9: "EBADF", 13: "EACCES", 17: "EEXIST", 125: "ECANCELED", 11: "EAGAIN", 12: "ENOMEM", 14: "EFAULT", 22: "EINVAL", 24: "EMFILE",
        32: "EPIPE", 88: "ENOTSOCK", 89: "EDESTADDRREQ", 90: "EMSGSIZE", 91: "EPROTOTYPE", 92: "ENOPROTOOPT",
        95: "EOPNOTSUPP", 98: "EADDRINUSE", 99: "EADDRNOTAVAIL", 101: "ENETUNREACH", 103: "ECONNABORTED",
        104: "ECONNRESET", 105: "ENOBUFS", 106: "EISCONN", 107: "ENOTCONN", 110: "ETIMEDOUT",
        111: "ECONNREFUSED", 113: "EHOSTUNREACH", 114: "EALREADY", 115: "EINPROGRESS",
    ]
    public var description: String { Errno.names[rawValue] ?? "errno \(rawValue)" }
}

extension SendError {
    /// The errno a socket call reports for an output failure.
    var socketErrno: Errno { Errno(errno) }
}
