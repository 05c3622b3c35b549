import SkiffWire

/// TCP Fast Open server cookies and keys (RFC 7413 §4.1.2).
public enum FastOpenCookie {
    /// The 8-byte cookie for a client at `source` talking to us at `destination`: SipHash-2-4
    /// keyed with the 128-bit Fast Open key over the SYN's source and destination addresses as
    /// they appear in the IP header (8 bytes, network order), the 64-bit result sent
    /// least-significant byte first. Linux: `__tcp_fastopen_cookie_gen_cipher()`.
    public static func generate(key: SipHashKey, source: IPv4Address, destination: IPv4Address) -> TCPFastOpenCookie {
        var h = SipHasher(key: key)
        // SipHasher takes 32-bit words little-endian; the header's bytes are big-endian.
        h.append(source.value.byteSwapped)
        h.append(destination.value.byteSwapped)
        return TCPFastOpenCookie(littleEndian: h.finalize())
    }

    /// A key from the 16 bytes of `TCP_FASTOPEN_KEY` (or the sysctl's, in memory order): two
    /// little-endian 64-bit halves. Linux: `tcp_fastopen_reset_cipher()`. Nil unless 16 bytes.
    public static func key(bytes: UnsafeRawBufferPointer) -> SipHashKey? {
        guard bytes.count == 16 else { return nil }
        var k0: UInt64 = 0, k1: UInt64 = 0
        for i in 0..<8 { k0 |= UInt64(bytes[i]) << UInt64(8 * i); k1 |= UInt64(bytes[8 + i]) << UInt64(8 * i) }
        return SipHashKey(k0, k1)
    }

    /// The 16 bytes of `key` in `TCP_FASTOPEN_KEY`'s layout (inverse of ``key(bytes:)``).
    public static func bytes(of key: SipHashKey) -> [UInt8] {
        (0..<16).map { i in UInt8(truncatingIfNeeded: (i < 8 ? key.k0 : key.k1) >> UInt64(8 * (i % 8))) }
    }

    /// A key from `net.ipv4.tcp_fastopen_key`'s text: four 32-bit hex words separated by dashes
    /// ("a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4"), each stored little-endian; a backup key after a
    /// comma is ignored. Linux: `proc_tcp_fastopen_key()`. Nil when malformed.
    public static func key(sysctlText text: String) -> SipHashKey? {
        let primary = text.split(separator: ",", omittingEmptySubsequences: false).first ?? ""
        let parts = primary.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var words: [UInt32] = []
        for p in parts {
            let t = p.trimmingWhitespace
            guard !t.isEmpty, t.count <= 8, let w = UInt32(t, radix: 16) else { return nil }
            words.append(w)
        }
        return SipHashKey(UInt64(words[0]) | UInt64(words[1]) << 32, UInt64(words[2]) | UInt64(words[3]) << 32)
    }
}

private extension Substring {
    var trimmingWhitespace: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" || c == "\n" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\n" { s = s.dropLast() }
        return s
    }
}
