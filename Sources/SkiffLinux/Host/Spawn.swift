#if canImport(Glibc)
import Glibc
#endif
import CSkiffLinux

/// Starts a detached POSIX thread running `body` (application threads: services, control
/// channel). Not used on the packet path.
@discardableResult
public func spawnThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    final class Box: @unchecked Sendable { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    let box = Unmanaged.passRetained(Box(body))
    var t = pthread_t()
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    pthread_attr_setstacksize(&attr, 512 * 1024)
    defer { pthread_attr_destroy(&attr) }
    let r = pthread_create(&t, &attr, { arg in
        let b = Unmanaged<AnyObject>.fromOpaque(arg!).takeRetainedValue()
        (b as! Box).body()
        return nil
    }, box.toOpaque())
    if r != 0 { box.release(); return false }
    return true
}

/// Starts a joinable POSIX thread named `name` (at most 15 bytes are kept, as Linux allows)
/// running `body`: the stack's own threads (engines, the transmitter), which their owner joins
/// when it stops them. Returns the thread, or the error `pthread_create` gave.
func startNamedThread(_ name: String, _ body: @escaping @Sendable () -> Void) -> Result<pthread_t, PortError> {
    final class Box: @unchecked Sendable {
        let name: String, body: @Sendable () -> Void
        init(_ n: String, _ b: @escaping @Sendable () -> Void) { name = n; body = b }
    }
    let box = Unmanaged.passRetained(Box(name, body))
    var t = pthread_t()
    let r = pthread_create(&t, nil, { arg in
        let b = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
        var bytes = Array(b.name.utf8.prefix(15)) + [0]
        _ = bytes.withUnsafeMutableBufferPointer {
            $0.withMemoryRebound(to: CChar.self) { skiff_pthread_setname_np(pthread_self(), $0.baseAddress!) }
        }
        b.body()
        return nil
    }, box.toOpaque())
    guard r == 0 else { box.release(); return .failure(.system(operation: "pthread_create", device: name, errno: r)) }
    return .success(t)
}
