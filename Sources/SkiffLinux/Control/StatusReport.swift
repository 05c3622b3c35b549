import Skiff
import SkiffWire

/// A value in a status report: a number or a string.
public enum ReportValue: Sendable, CustomStringConvertible {
    case int(Int64)
    case double(Double)
    case text(String)

    public var description: String {
        switch self {
        case let .int(v): String(v)
        case let .double(v): String((v * 1000).rounded() / 1000)
        case let .text(s): s
        }
    }

    var json: String {
        switch self {
        case let .int(v): String(v)
        case let .double(v): v.isFinite ? String((v * 1000).rounded() / 1000) : "null"
        case let .text(s): ReportValue.quote(s)
        }
    }

    static func quote(_ s: String) -> String {
        var o = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": o += "\\\""
            case "\\": o += "\\\\"
            case "\n": o += "\\n"
            default: if c.value < 0x20 { o += "\\u00" + (c.value < 16 ? "0" : "") + String(c.value, radix: 16) } else { o.unicodeScalars.append(c) }
            }
        }
        return o + "\""
    }
}

/// One line of a section: ordered key/value pairs.
public typealias ReportRow = [(String, ReportValue)]

/// A running stack's state, section by section, each shaped like the Linux tool that shows the
/// same thing; printed as text or JSON by `skiff stat`.
public struct StatusReport: Sendable {
    public var sections: [(name: String, rows: [ReportRow])] = []

    public init() {}

    public mutating func add(_ name: String, _ rows: [ReportRow]) { sections.append((name, rows)) }

    public var text: String {
        var s = ""
        for (name, rows) in sections {
            s += "\(name):\n"
            if rows.isEmpty { s += "  (none)\n" }
            for r in rows { s += "  " + r.map { "\($0.0) \($0.1)" }.joined(separator: "  ") + "\n" }
        }
        return s
    }

    public var json: String {
        let body = sections.map { name, rows in
            let key = String(name.prefix { $0 != " " })
            let items = rows.map { r in "{" + r.map { "\(ReportValue.quote($0.0)):\($0.1.json)" }.joined(separator: ",") + "}" }
            return "\(ReportValue.quote(key)):[\(items.joined(separator: ","))]"
        }
        return "{" + body.joined(separator: ",") + "}\n"
    }

    /// Counters of a struct of integer fields (IPCounters, TCPCounters…), nonzero ones only
    /// unless `all`. Reflection: not on the packet path.
    static func counterRow(_ value: Any, prefix: String, all: Bool = false) -> ReportRow {
        var row: ReportRow = []
        for child in Mirror(reflecting: value).children {
            guard let label = child.label else { continue }
            let v: Int64?
            switch child.value {
            case let x as UInt64: v = Int64(truncatingIfNeeded: x)
            case let x as Int: v = Int64(x)
            case let x as UInt32: v = Int64(x)
            default: v = nil
            }
            if let v, all || v != 0 { row.append((prefix + label, .int(v))) }
        }
        return row
    }
}

extension LinuxHost {
    /// Collects the report under the stack lock.
    public func statusReport(services: ServiceRunner? = nil) -> StatusReport {
        let engineStats = engines.map { ($0.queue, $0.statistics, $0.receiveBatch) }
        let transmitterCounters = transmitter?.counters
        return shared.withStack { stack, now in
            var r = StatusReport()
            let tx = device.nic.withTransmitLock { port.txStatistics }   // the transmitter writes them
            r.add("interfaces (ip -s link)", stack.devices.map { d in
                let s = d.stats
                return [("name", .text(d.name)), ("mtu", .int(Int64(d.mtu))), ("mac", .text(d.mac.description)),
                        ("state", .text(d.isUp ? "UP" : "DOWN")),
                        ("addr", .text(d.addresses.map { "\($0.address)/\($0.prefixLength)" }.joined(separator: ","))),
                        ("rx_packets", .int(Int64(s.rxPackets))), ("rx_bytes", .int(Int64(s.rxBytes))),
                        ("rx_errors", .int(Int64(s.rxErrors))), ("rx_dropped", .int(Int64(s.rxDropped))),
                        ("tx_packets", .int(Int64(s.txPackets))), ("tx_bytes", .int(Int64(s.txBytes))),
                        ("tx_errors", .int(Int64(s.txErrors &+ tx.errors))), ("tx_dropped", .int(Int64(s.txDropped)))]
            })
            var qd: [ReportRow] = []
            for d in stack.devices {
                for q in d.txQueues {
                    let st = q.qdisc.statistics
                    qd.append([("dev", .text(d.name)), ("queue", .int(Int64(q.index))), ("qdisc", .text(q.qdisc.kind)),
                               ("sent_bytes", .int(Int64(st.sentBytes))), ("sent_pkt", .int(Int64(st.sentPackets))),
                               ("dropped", .int(Int64(st.drops))), ("overlimits", .int(Int64(st.overlimits))),
                               ("requeues", .int(Int64(st.requeues))), ("backlog_b", .int(Int64(st.backlogBytes))),
                               ("backlog_p", .int(Int64(st.backlogPackets))), ("bypassed", .int(Int64(q.bypassed))),
                               ("quota_deferrals", .int(Int64(q.quotaDeferrals)))])
                }
            }
            r.add("qdiscs (tc -s qdisc)", qd)
            var rings: [ReportRow] = []
            for d in stack.devices {
                for q in d.txQueues {
                    let g = q.ring
                    rings.append([("dev", .text(d.name)), ("tx_queue", .int(Int64(q.index))), ("size", .int(Int64(g.size))),
                                  ("packets", .int(Int64(g.packets))), ("bytes", .int(Int64(g.bytes))),
                                  ("doorbells", .int(Int64(g.doorbells))), ("stops", .int(Int64(g.stops))),
                                  ("wakes", .int(Int64(g.wakes))), ("unused", .int(Int64(g.unused)))])
                }
                for q in d.rxQueues {
                    let g = q.ring
                    rings.append([("dev", .text(d.name)), ("rx_queue", .int(Int64(q.index))), ("size", .int(Int64(g.size))),
                                  ("packets", .int(Int64(g.packets))), ("bytes", .int(Int64(g.bytes))),
                                  ("missed", .int(Int64(g.missed))), ("alloc_failed", .int(Int64(g.allocFailed))),
                                  ("napi_polls", .int(Int64(q.napi.polls))), ("napi_full_polls", .int(Int64(q.napi.fullPolls))),
                                  ("irqs", .int(Int64(d.nic.vectors[q.index].count)))])
                }
                rings.append([("dev", .text(d.name)), ("nic_tx_frames", .int(Int64(d.nic.txFrames))),
                              ("nic_rx_frames", .int(Int64(d.nic.rxFrames))), ("rx_length_errors", .int(Int64(d.nic.rxLengthErrors))),
                              ("dma_errors", .int(Int64(d.nic.dmaErrors)))])
            }
            rings.append([("port", .text(port.name)), ("tx_frames", .int(Int64(tx.frames))), ("tx_bytes", .int(Int64(tx.bytes))),
                          ("tx_errors", .int(Int64(tx.errors))), ("tx_gso_frames", .int(Int64(tx.gsoFrames))),
                          ("tx_io_uring", .text(tx.batchingState)), ("tx_uring_submits", .int(Int64(tx.batches))),
                          ("tx_uring_failures", .int(Int64(tx.ringFailures)))])
            for (q, _, b) in engineStats {
                rings.append([("port", .text(port.name)), ("rx_queue", .int(Int64(q))), ("rx_frames", .int(Int64(b.frames))),
                              ("rx_bytes", .int(Int64(b.bytes))), ("reads", .int(Int64(b.reads))), ("rx_errors", .int(Int64(b.errors))),
                              ("rx_gso_frames", .int(Int64(b.gsoFrames))), ("rx_csum_completed", .int(Int64(b.checksumsCompleted)))])
            }
            r.add("rings (ethtool -S)", rings)
            r.add("softirqs (/proc/softirqs)", [SoftirqVector.allCases.map { ($0.name, .int(Int64(stack.softirq.count($0)))) }
                + [("deferred_to_ksoftirqd", .int(Int64(stack.softirq.deferrals))), ("time_squeeze", .int(Int64(stack.timeSqueeze)))]])
            var cpu: [ReportRow] = [ExecutionContext.allCases.map { ($0.name + "_ms", .double(Double(stack.contexts.cpuTime($0)) / 1e6)) }]
            for (q, e, _) in engineStats {
                cpu.append([("engine_thread", .int(Int64(q))), ("cpu_ms", .double(Double(e.cpuTime) / 1e6)),
                            ("port_read_ms", .double(Double(e.portReadTime) / 1e6)), ("wakeups", .int(Int64(e.wakeups))),
                            ("batches", .int(Int64(e.batches))), ("busy_poll_hits", .int(Int64(e.busyPollHits))), ("caller_busy_polls", .int(Int64(e.callerBusyPolls))), ("frames_to_nic", .int(Int64(e.framesToNIC))), ("runs", .int(Int64(e.runs)))])
            }
            cpu.append([("busy_read_rounds", .int(Int64(shared.busyPollRounds))), ("busy_read_hits", .int(Int64(shared.busyPollHits))),
                        ("device_sleeps", .int(Int64(shared.deviceSleeps))), ("device_sleep_polls", .int(Int64(shared.deviceSleepPolls))), ("device_handoffs", .int(Int64(shared.deviceHandoffs))), ("device_sleep_pauses", .int(Int64(shared.deviceSleepPauses))),
                        ("lock_sleeps", .int(Int64(shared.lock.wakeups))), ("keyed_wakes", .int(Int64(shared.lock.keyedWakes))),
                        ("keyed_skips", .int(Int64(shared.lock.keyedSkips))), ("missed_wakeups", .int(Int64(shared.missedWakeups)))])
            if let t = transmitterCounters {
                cpu.append([("transmit_thread_wakeups", .int(Int64(t.wakeups))), ("transmit_thread_busy", .int(Int64(t.transmitted)))])
            }
            r.add("cpu (by context; engine threads' own CPU clocks)", cpu)
            let ledger = stack.pool.ledger
            r.add("copies (bytes/operations by stage)", [CopyStage.allCases.filter { ledger.bytes($0) > 0 }.flatMap { s -> ReportRow in
                [(s.name + "_bytes", .int(Int64(ledger.bytes(s)))), (s.name + "_ops", .int(Int64(ledger.operations(s))))]
            }])
            r.add("counters (nstat)", [StatusReport.counterRow(stack.counters, prefix: ""),
                                       StatusReport.counterRow(stack.tcpCounters, prefix: "Tcp"),
                                       StatusReport.counterRow(stack.udpCounters, prefix: "Udp")])
            r.add("drops", [stack.drops.nonzero.map { ($0.0.name, .int(Int64($0.1))) }])
            var socks: [ReportRow] = []
            for h in stack.tcpSocketHandles {
                guard let s = stack.tcpInfoSocket(h) else { continue }
                var row: ReportRow = [("fd", .int(Int64(h))), ("state", .text("\(s.state)")),
                                      ("local", .text("\(s.localAddress):\(s.localPort)")),
                                      ("peer", .text("\(s.remoteAddress):\(s.remotePort)"))]
                if case let .success(i) = stack.tcpInfo(h), s.state != .listen {
                    row += [("cwnd", .int(Int64(i.sendCwnd))), ("ssthresh", .int(Int64(i.sendSSThresh))),
                            ("rtt_ms", .double(Double(i.rtt ?? 0) / 1e6)), ("rto_ms", .double(Double(i.rto) / 1e6)),
                            ("mss", .int(Int64(i.sendMSS))), ("retrans", .int(Int64(i.totalRetrans))),
                            ("unacked", .int(Int64(i.unacked))), ("bytes_acked", .int(Int64(i.bytesAcked))),
                            ("bytes_received", .int(Int64(i.bytesReceived))), ("cc", .text(i.congestion))]
                }
                socks.append(row)
            }
            r.add("sockets (ss -tin)", socks)
            r.add("neighbours (ip neigh)", stack.neighbours.entries.map {
                [("addr", .text("\($0.address)")), ("dev", .int(Int64($0.device))), ("lladdr", .text($0.mac.description)),
                 ("state", .text($0.state.rawValue))]
            })
            r.add("routes (ip route)", stack.routes.routes.map {
                [("dst", .text("\($0.destination)/\($0.prefixLength)")), ("via", .text($0.gateway.map { "\($0)" } ?? "-")),
                 ("dev", .text(stack.devices[$0.device].name)), ("metric", .int(Int64($0.metric))),
                 ("src", .text($0.source.map { "\($0)" } ?? "-"))]
            })
            if let sv = services?.statisticsUnlocked {
                r.add("services", [[("accepted", .int(Int64(sv.accepted))), ("bytes_in", .int(Int64(sv.bytesIn))),
                                    ("bytes_out", .int(Int64(sv.bytesOut))), ("http_requests", .int(Int64(sv.httpRequests)))]])
            }
            r.add("uptime", [[("now_ms", .double(Double(now) / 1e6))]])
            return r
        }
    }
}
