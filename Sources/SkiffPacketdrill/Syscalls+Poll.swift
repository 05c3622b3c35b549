#if canImport(Glibc)
import Glibc
#endif
import Skiff

/// poll, epoll_create, epoll_ctl, epoll_wait (Linux: `do_sys_poll` → `tcp_poll`;
/// `fs/eventpoll.c`). Timeouts are in milliseconds of virtual time; negative waits for ever.
extension PacketdrillHost {
    /// Linux's poll bits for Skiff's readiness: POLLRDNORM with POLLIN, POLLWRNORM with POLLOUT.
    static func linuxPollBits(_ e: PollEvents) -> UInt32 {
        var bits = e.rawValue
        if e.contains(.readable) { bits |= 0x040 }
        if e.contains(.writable) { bits |= 0x100 }
        return bits
    }

    func poll(_ fds: UnsafeMutablePointer<pollfd>?, count: Int, timeoutMs: Int32) -> SyscallResult {
        guard count >= 0, count <= FileTable.limit else { return .failure(.EINVAL) }
        if count > 0 && fds == nil { return .failure(.EFAULT) }
        return locked {
            let timeout: Nanoseconds = timeoutMs > 0 ? UInt64(timeoutMs) * Time.millisecond : 0
            let r: Int = blockingCall(wait: timeoutMs != 0, timeout: timeout) {
                var ready = 0
                for i in 0..<count {
                    let fd = fds![i].fd
                    if fd < 0 { fds![i].revents = 0; continue }
                    var revents: UInt32
                    switch files[fd] {
                    case nil: revents = 0x020   // POLLNVAL
                    case let .socket(h)?, let .epoll(h)?:
                        let asked = UInt32(UInt16(bitPattern: fds![i].events)) | 0x008 | 0x010
                        revents = PacketdrillHost.linuxPollBits(stack.poll(h)) & asked
                    }
                    fds![i].revents = Int16(truncatingIfNeeded: revents)
                    if revents != 0 { ready += 1 }
                }
                return ready > 0 ? .done(ready) : .wouldBlock(0)
            }
            return .success(r)
        }
    }

    func epollCreate(size: Int32) -> SyscallResult {
        guard size > 0 else { return .failure(.EINVAL) }
        return locked {
            let h = stack.epollCreate()
            guard case let .success(fd) = files.open(.epoll(h)) else { _ = stack.close(h, now: now); return .failure(.EMFILE) }
            return .success(Int(fd))
        }
    }

    /// `struct epoll_event`: packed on x86-64 (12 bytes), naturally aligned elsewhere (16).
    #if arch(x86_64)
    static let epollEventSize = 12, epollDataOffset = 4
    #else
    static let epollEventSize = 16, epollDataOffset = 8
    #endif

    func epollControl(_ epfd: Int32, op: Int32, fd: Int32, event: UnsafeRawPointer?) -> SyscallResult {
        locked {
            guard case let .epoll(eh)? = files[epfd] else { return .failure(files[epfd] == nil ? .EBADF : .EINVAL) }
            guard let target = files[fd] else { return .failure(.EBADF) }
            let th: Int32
            switch target { case let .socket(x): th = x; case let .epoll(x): th = x }
            let operation: EpollOperation
            switch op {
            case LinuxABI.EPOLL_CTL_ADD: operation = .add
            case LinuxABI.EPOLL_CTL_MOD: operation = .modify
            case LinuxABI.EPOLL_CTL_DEL: operation = .delete
            default: return .failure(.EINVAL)
            }
            var bits: UInt32 = 0, data: UInt64 = 0
            if operation != .delete {
                guard let event else { return .failure(.EFAULT) }
                bits = event.loadUnaligned(as: UInt32.self)
                data = event.loadUnaligned(fromByteOffset: PacketdrillHost.epollDataOffset, as: UInt64.self)
            }
            if operation != .delete && bits & LinuxABI.EPOLLEXCLUSIVE != 0 {
                // Linux: EPOLLEXCLUSIVE only when adding, and only with EPOLLIN/OUT/ERR/HUP/ET/
                // WAKEUP (EPOLLEXCLUSIVE_OK_BITS); every waiter here is woken anyway.
                let allowed = LinuxABI.EPOLLIN | LinuxABI.EPOLLOUT | LinuxABI.EPOLLERR | LinuxABI.EPOLLHUP
                    | LinuxABI.EPOLLET | LinuxABI.EPOLLEXCLUSIVE | 0x2000_0000   // EPOLLWAKEUP
                if operation == .modify || bits & ~allowed != 0 { return .failure(.EINVAL) }
            }
            let interest = PollEvents(rawValue: bits & (LinuxABI.EPOLLIN | LinuxABI.EPOLLOUT | LinuxABI.EPOLLERR
                                                         | LinuxABI.EPOLLHUP | LinuxABI.EPOLLRDHUP | LinuxABI.EPOLLPRI))
            let e = stack.epollControl(eh, operation, th, events: interest, edgeTriggered: bits & LinuxABI.EPOLLET != 0,
                                       oneShot: bits & LinuxABI.EPOLLONESHOT != 0, userData: data)
            if e == nil { quiesce() }
            return e.map { .failure(Errno($0.rawValue == 2 ? LinuxABI.ENOENT : $0.rawValue)) } ?? .success(0)
        }
    }

    func epollWait(_ epfd: Int32, events: UnsafeMutableRawPointer?, maxEvents: Int32, timeoutMs: Int32) -> SyscallResult {
        guard maxEvents > 0, maxEvents <= Int32.max / Int32(PacketdrillHost.epollEventSize) else { return .failure(.EINVAL) }
        guard let events else { return .failure(.EFAULT) }
        return locked {
            guard case let .epoll(eh)? = files[epfd] else { return .failure(files[epfd] == nil ? .EBADF : .EINVAL) }
            let timeout: Nanoseconds = timeoutMs > 0 ? UInt64(timeoutMs) * Time.millisecond : 0
            let r: Result<[EpollEvent], Errno> = blockingCall(wait: timeoutMs != 0, timeout: timeout) {
                let r = stack.epollWait(eh, maxEvents: Int(maxEvents))
                if case let .success(list) = r, list.isEmpty { return .wouldBlock(r) }
                return .done(r)
            }
            return r.map { list in
                for (i, e) in list.enumerated() {
                    let p = events + i * PacketdrillHost.epollEventSize
                    p.storeBytes(of: e.events.rawValue, as: UInt32.self)
                    p.storeBytes(of: e.userData, toByteOffset: PacketdrillHost.epollDataOffset, as: UInt64.self)
                }
                return list.count
            }
        }
    }
}
