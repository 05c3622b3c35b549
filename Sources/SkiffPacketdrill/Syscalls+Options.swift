import Skiff
import SkiffWire

/// setsockopt and getsockopt (Linux: `sock_setsockopt` / `sock_getsockopt` for SOL_SOCKET,
/// `do_tcp_setsockopt` / `do_tcp_getsockopt` for SOL_TCP, `do_ip_setsockopt` for SOL_IP).
/// Values are C `int`s unless noted; a length shorter than an int is EINVAL, an option Skiff
/// does not know is ENOPROTOOPT, as Linux answers for options it does not have.
extension PacketdrillHost {
    func setsockopt(_ fd: Int32, level: Int32, name: Int32, value: UnsafeRawPointer?, length: UInt32) -> SyscallResult {
        locked {
            let h: Int32
            switch socketHandle(fd) { case let .success(x): h = x; case let .failure(e): return .failure(e) }
            let isTCP = stack.tcpInfoSocket(h) != nil
            if level == LinuxABI.SOL_TCP && flags.followSysctls
                && [LinuxABI.TCP_FASTOPEN, LinuxABI.TCP_FASTOPEN_CONNECT, LinuxABI.TCP_FASTOPEN_KEY].contains(name) {
                LinuxSysctls.applyFastOpen(to: &stack.tcpConfig)
            }
            // Timeouts take a struct timeval (16 bytes on 64-bit Linux).
            if level == LinuxABI.SOL_SOCKET && (name == LinuxABI.SO_RCVTIMEO || name == LinuxABI.SO_SNDTIMEO) {
                guard let value else { return .failure(.EFAULT) }
                guard length >= 16 else { return .failure(.EINVAL) }
                let sec = value.loadUnaligned(as: Int64.self), usec = value.loadUnaligned(fromByteOffset: 8, as: Int64.self)
                guard sec >= 0, (0..<1_000_000).contains(usec) else { return sec < 0 ? .success(0) : .failure(Errno(33)) } // EDOM
                let t = UInt64(sec) &* Time.second &+ UInt64(usec) &* Time.microsecond
                let opt: FileOption = name == LinuxABI.SO_RCVTIMEO ? .receiveTimeout(t) : .sendTimeout(t)
                return stack.setFileOption(h, opt).map { .failure($0) } ?? .success(0)
            }
            if level == LinuxABI.SOL_SOCKET && name == LinuxABI.SO_LINGER {
                guard let value else { return .failure(.EFAULT) }
                guard length >= 8 else { return .failure(.EINVAL) }
                let on = value.loadUnaligned(as: Int32.self) != 0, sec = value.loadUnaligned(fromByteOffset: 4, as: Int32.self)
                guard isTCP else { return .success(0) }
                return stack.setOption(h, .linger(on: on, seconds: Int(max(0, sec))), now: now).map { .failure($0) } ?? .success(0)
            }
            if level == LinuxABI.SOL_SOCKET
                && (name == LinuxABI.SO_TIMESTAMPING_OLD || name == LinuxABI.SO_TIMESTAMPING_NEW || name == LinuxABI.SO_ZEROCOPY) {
                // An int; SO_TIMESTAMPING also takes `struct so_timestamping` (flags, bind_phc),
                // whose flags come first. Skiff has neither on UDP sockets.
                guard let value else { return .failure(.EFAULT) }
                guard length >= 4 else { return .failure(.EINVAL) }
                let v = value.loadUnaligned(as: Int32.self)
                guard isTCP else { return .failure(.ENOPROTOOPT) }
                let option: SocketOption
                if name == LinuxABI.SO_ZEROCOPY {
                    guard v == 0 || v == 1 else { return .failure(.EINVAL) }   // Linux: sock_setsockopt()
                    option = .zerocopy(v == 1)
                } else {
                    option = .timestamping(flags: UInt32(bitPattern: v), newLayout: name == LinuxABI.SO_TIMESTAMPING_NEW)
                }
                return stack.setOption(h, option, now: now).map { .failure($0) } ?? .success(0)
            }
            if level == LinuxABI.SOL_TCP && name == LinuxABI.TCP_CONGESTION {
                guard let value else { return .failure(.EFAULT) }
                let bytes = UnsafeRawBufferPointer(start: value, count: Int(min(length, 16)))
                let name = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                guard isTCP else { return .failure(.ENOPROTOOPT) }
                return stack.setOption(h, .congestion(name), now: now).map { .failure($0) } ?? .success(0)
            }
            if level == LinuxABI.SOL_TCP && name == LinuxABI.TCP_FASTOPEN_KEY {
                // Linux checks the length (16, or 32 with a backup key) before reading the value.
                guard isTCP else { return .failure(.ENOPROTOOPT) }
                guard length == 16 || length == 32 else { return .failure(.EINVAL) }
                guard let value else { return .failure(.EFAULT) }
                let key = Array(UnsafeRawBufferPointer(start: value, count: Int(length)))
                return stack.setOption(h, .fastOpenKey(key), now: now).map { .failure($0) } ?? .success(0)
            }
            if level == LinuxABI.SOL_IP {
                // Linux's do_ip_setsockopt reads an int, or a single byte when that is all there is.
                guard let value else { return .failure(.EFAULT) }
                guard length >= 1 else { return .failure(.EINVAL) }
                let v = length >= 4 ? Int(value.loadUnaligned(as: Int32.self)) : Int(value.load(as: UInt8.self))
                switch name {
                case LinuxABI.IP_TOS:
                    guard isTCP else { return .success(0) }
                    let e = stack.setOption(h, .typeOfService(UInt8(truncatingIfNeeded: v)), now: now)
                    return e.map { .failure($0) } ?? .success(0)
                case LinuxABI.IP_MTU_DISCOVER:
                    // IP_PMTUDISC_DONT ... IP_PMTUDISC_OMIT; Skiff's TCP always sets DF.
                    return (0...5).contains(v) ? .success(0) : .failure(.EINVAL)
                case LinuxABI.IP_FREEBIND:
                    return .success(0)   // binding to a non-local address is not checked anyway
                default:
                    return .failure(.ENOPROTOOPT)
                }
            }
            guard let value else { return .failure(.EFAULT) }
            guard length >= 4 else { return .failure(.EINVAL) }
            let v = Int(value.loadUnaligned(as: Int32.self))
            let option: SocketOption?
            switch (level, name) {
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_REUSEADDR): option = .reuseAddress(v != 0)
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_REUSEPORT): option = .reusePort(v != 0)
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_KEEPALIVE): option = .keepalive(v != 0)
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_SNDBUF): option = .sendBuffer(max(0, v))
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_RCVBUF): option = .receiveBuffer(max(0, v))
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_MARK), (LinuxABI.SOL_SOCKET, LinuxABI.SO_RCVLOWAT):
                return .success(0)   // accepted; no routing by mark, and a low-water mark of 1
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_NODELAY): option = .noDelay(v != 0)
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_CORK): option = .cork(v != 0)
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_MAXSEG): option = .maxSegment(v)
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_KEEPIDLE): option = .keepIdle(seconds: v)
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_KEEPINTVL): option = .keepInterval(seconds: v)
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_KEEPCNT): option = .keepCount(v)
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_USER_TIMEOUT): option = .userTimeout(milliseconds: v)
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_NOTSENT_LOWAT): option = .notSentLowat(v)
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_SYNCNT): option = .synCount(v)
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_FASTOPEN): option = .fastOpen(v)
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_FASTOPEN_CONNECT): option = .fastOpenConnect(v)
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_FASTOPEN_NO_COOKIE): option = .fastOpenNoCookie(v)
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_INQ): option = .receiveQueueHint(v)
            default: option = nil
            }
            guard let option else { return .failure(.ENOPROTOOPT) }
            if isTCP {
                let e = stack.setOption(h, option, now: now)
                quiesce()
                return e.map { .failure($0) } ?? .success(0)
            }
            let udp: UDPSocketOption?
            switch option {
            case let .reuseAddress(b): udp = .reuseAddress(b)
            case let .reusePort(b): udp = .reusePort(b)
            case let .sendBuffer(n): udp = .sendBuffer(n)
            case let .receiveBuffer(n): udp = .receiveBuffer(n)
            default: udp = nil
            }
            guard let udp else { return level == LinuxABI.SOL_TCP ? .failure(.ENOPROTOOPT) : .success(0) }
            return stack.setUDPOption(h, udp, now: now).map { .failure($0) } ?? .success(0)
        }
    }

    func getsockopt(_ fd: Int32, level: Int32, name: Int32, value: UnsafeMutableRawPointer?,
                    length: UnsafeMutablePointer<UInt32>?) -> SyscallResult {
        locked {
            let h: Int32
            switch socketHandle(fd) { case let .success(x): h = x; case let .failure(e): return .failure(e) }
            guard let length else { return .failure(.EFAULT) }
            guard Int32(bitPattern: length.pointee) >= 0 else { return .failure(.EINVAL) }
            let isTCP = stack.tcpInfoSocket(h) != nil
            func put(_ bytes: [UInt8]) -> SyscallResult {
                let n = min(Int(length.pointee), bytes.count)
                if n > 0 {
                    guard let value else { return .failure(.EFAULT) }
                    bytes.withUnsafeBytes { value.copyMemory(from: $0.baseAddress!, byteCount: n) }
                }
                length.pointee = UInt32(n)
                return .success(0)
            }
            func putInt(_ v: Int) -> SyscallResult {
                guard length.pointee >= 4 || level == LinuxABI.SOL_TCP else { return .failure(.EINVAL) }
                return put(withUnsafeBytes(of: Int32(truncatingIfNeeded: v).littleEndian) { Array($0) })
            }
            if level == LinuxABI.SOL_TCP && name == LinuxABI.TCP_INFO {
                guard isTCP, case let .success(info) = stack.tcpInfo(h) else { return .failure(.EOPNOTSUPP) }
                return put(LinuxTCPInfo.encode(info))
            }
            if level == LinuxABI.SOL_TCP && name == LinuxABI.TCP_CC_INFO {
                // CUBIC and Reno have no `get_info`: success with nothing (Linux: sz = 0).
                guard isTCP else { return .failure(.ENOPROTOOPT) }
                return put([])
            }
            if level == LinuxABI.SOL_SOCKET && name == LinuxABI.SO_MEMINFO {
                let m = isTCP ? ((try? stack.memoryInfo(h).get()) ?? SocketMemoryInfo()) : SocketMemoryInfo()
                return put(m.values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } })
            }
            if level == LinuxABI.SOL_TCP && name == LinuxABI.TCP_CONGESTION {
                guard isTCP, case let .success(.string(s)) = stack.option(h, .congestion) else { return .failure(.ENOPROTOOPT) }
                var bytes = Array(s.utf8)
                bytes += [UInt8](repeating: 0, count: max(0, 16 - bytes.count))
                return put(bytes)
            }
            switch (level, name) {
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_TYPE): return putInt(Int(isTCP ? LinuxABI.SOCK_STREAM : LinuxABI.SOCK_DGRAM))
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_PROTOCOL): return putInt(Int(isTCP ? LinuxABI.IPPROTO_TCP : LinuxABI.IPPROTO_UDP))
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_DOMAIN): return putInt(Int(LinuxABI.AF_INET))
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_ZEROCOPY):
                guard isTCP, case let .success(.bool(b)) = stack.option(h, .zerocopy) else { return putInt(0) }
                return putInt(b ? 1 : 0)
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_TIMESTAMPING_OLD), (LinuxABI.SOL_SOCKET, LinuxABI.SO_TIMESTAMPING_NEW):
                // Linux: `struct so_timestamping` (flags, bind_phc), cut to the length asked for.
                var flags = 0
                if isTCP, case let .success(.int(f)) = stack.option(h, .timestamping) { flags = f }
                return put(withUnsafeBytes(of: (Int32(truncatingIfNeeded: flags), Int32(0))) { Array($0) })
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_RCVTIMEO), (LinuxABI.SOL_SOCKET, LinuxABI.SO_SNDTIMEO):
                let f = fileState(h)
                let t = name == LinuxABI.SO_RCVTIMEO ? f.receiveTimeout : f.sendTimeout
                var bytes = withUnsafeBytes(of: Int64(t / Time.second)) { Array($0) }
                bytes += withUnsafeBytes(of: Int64(t % Time.second / Time.microsecond)) { Array($0) }
                return put(bytes)
            default: break
            }
            guard isTCP else { return .failure(.ENOPROTOOPT) }
            let which: SocketOptionName
            switch (level, name) {
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_REUSEADDR): which = .reuseAddress
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_REUSEPORT): which = .reusePort
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_KEEPALIVE): which = .keepalive
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_SNDBUF): which = .sendBuffer
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_RCVBUF): which = .receiveBuffer
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_ERROR): which = .error
            case (LinuxABI.SOL_SOCKET, LinuxABI.SO_LINGER): which = .linger
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_NODELAY): which = .noDelay
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_CORK): which = .cork
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_MAXSEG): which = .maxSegment
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_KEEPIDLE): which = .keepIdle
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_KEEPINTVL): which = .keepInterval
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_KEEPCNT): which = .keepCount
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_USER_TIMEOUT): which = .userTimeout
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_NOTSENT_LOWAT): which = .notSentLowat
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_SYNCNT): which = .synCount
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_FASTOPEN): which = .fastOpen
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_FASTOPEN_CONNECT): which = .fastOpenConnect
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_FASTOPEN_NO_COOKIE): which = .fastOpenNoCookie
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_FASTOPEN_KEY): which = .fastOpenKey
            case (LinuxABI.SOL_TCP, LinuxABI.TCP_INQ): which = .receiveQueueHint
            default: return .failure(.ENOPROTOOPT)
            }
            switch stack.option(h, which) {
            case let .failure(e): return .failure(e)
            case let .success(v):
                switch v {
                case let .int(n): return putInt(n)
                case let .bool(b): return putInt(b ? 1 : 0)
                case let .error(e): return putInt(Int(e?.rawValue ?? 0))
                case let .linger(on, seconds):
                    var bytes = withUnsafeBytes(of: Int32(on ? 1 : 0)) { Array($0) }
                    bytes += withUnsafeBytes(of: Int32(seconds)) { Array($0) }
                    return put(bytes)
                case let .string(s): return put(Array(s.utf8))
                case let .bytes(b): return put(b)
                }
            }
        }
    }
}
