import CSkiffPacketdrill
import Skiff

/// What a packetdrill descriptor refers to.
enum OpenFile: Equatable {
    /// A Skiff socket (TCP or UDP) by its stack handle.
    case socket(Int32)
    /// A Skiff epoll instance by its stack handle.
    case epoll(Int32)
}

/// The descriptor table packetdrill sees. Each descriptor is a real one of the process (a
/// placeholder, see `skiff_pd_reserve_fd`), so numbers are small integers handed out lowest
/// first as Linux's `__alloc_fd` does, never collide with packetdrill's own files, and survive
/// packetdrill closing them with the real `close(2)` when a script ends.
struct FileTable {
    private struct Entry {
        var file: OpenFile
        var inode: UInt64
    }
    private var entries: [Int32: Entry] = [:]
    /// How many descriptors one host may hold (Linux's default `RLIMIT_NOFILE`).
    static let limit = 1024

    /// A new descriptor for `file`, or an errno (EMFILE when the process has none left).
    mutating func open(_ file: OpenFile) -> Result<Int32, Errno> {
        guard entries.count < FileTable.limit else { return .failure(.EMFILE) }
        var inode: UInt64 = 0
        let fd = skiff_pd_reserve_fd(&inode)
        guard fd >= 0 else { return .failure(.EMFILE) }
        entries[fd] = Entry(file: file, inode: inode)
        return .success(fd)
    }

    subscript(fd: Int32) -> OpenFile? { entries[fd]?.file }

    /// Frees `fd` and its placeholder; returns what it referred to.
    mutating func close(_ fd: Int32) -> OpenFile? {
        guard let e = entries.removeValue(forKey: fd) else { return nil }
        skiff_pd_release_fd(fd, e.inode)
        return e.file
    }

    /// Every open descriptor with what it refers to.
    var all: [(Int32, OpenFile)] { entries.map { ($0.key, $0.value.file) }.sorted { $0.0 < $1.0 } }
}
