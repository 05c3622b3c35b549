/// How a blocked receive sleeps on the device itself and runs the device's NAPI poll in its own
/// thread when frames arrive, instead of sleeping on the stack's condition variable until the
/// engine thread has been woken by the device, has run the poll, and wakes it in turn.
///
/// A request then costs one wake-up (the device's readiness wakes the caller) instead of two
/// (engine, then caller): what the kernel gets for free because its interrupt handler and
/// softirq need no thread to be scheduled. While a caller owns the device the engine stops
/// watching it (the device's "interrupt" is masked) and keeps only its timers; giving the
/// device back unmasks it. One caller owns the device at a time; others sleep as before.
///
/// The host that owns the port supplies the operations. Linux has no exact counterpart: the
/// nearest is busy polling with interrupts suspended (`SO_PREFER_BUSY_POLL`,
/// `irq_suspend_timeout`, `napi_defer_hard_irqs`), where the application rather than the
/// interrupt drives NAPI; here the waiting thread also sleeps on the device's readiness.
public struct DeviceSleep: Sendable {
    /// Takes the device for the calling thread if no one else polls it, and masks the engine's
    /// wake-ups from it; false when another thread has it. Called with the stack locked (it
    /// must not block). Linux: `napi_schedule_prep()` won by a busy poller.
    public var acquire: @Sendable () -> Bool
    /// Sleeps, with the stack unlocked, until the device has frames, `wake` is called or the
    /// monotonic deadline passes (nil: no limit); true when the device has frames.
    public var sleep: @Sendable (_ deadline: Nanoseconds?) -> Bool
    /// Runs one NAPI poll of the device with the stack unlocked; returns the frames it read.
    /// Linux: `napi_busy_loop()` → `napi_poll()`.
    public var poll: @Sendable () -> Int
    /// Gives the device back to the engine and unmasks its wake-ups (with or without the lock).
    public var release: @Sendable () -> Void
    /// Ends a `sleep` early, from any thread, with the stack locked (`StackLock.wakeAll`).
    public var wake: @Sendable () -> Void

    public init(acquire: @escaping @Sendable () -> Bool,
                sleep: @escaping @Sendable (_ deadline: Nanoseconds?) -> Bool,
                poll: @escaping @Sendable () -> Int,
                release: @escaping @Sendable () -> Void,
                wake: @escaping @Sendable () -> Void) {
        self.acquire = acquire
        self.sleep = sleep
        self.poll = poll
        self.release = release
        self.wake = wake
    }
}
