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
