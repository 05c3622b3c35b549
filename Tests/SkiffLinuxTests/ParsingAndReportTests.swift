import Foundation
import Testing
import Skiff
@testable import SkiffLinux

@Suite struct ParsingAndReportTests {
    @Test func servicesParseAndBadItemsAreNamed() throws {
        let ok = try ServiceSpec.parseList("echo:7,discard:9,chargen:19,http:80=/srv/www").get()
        #expect(ok == [.echo(7), .discard(9), .chargen(19), .http(80, directory: "/srv/www")])
        for (text, words) in [("ftp:21", "unknown service 'ftp'"), ("echo:0", "port"), ("echo", "NAME:PORT"),
                              ("http:80", "=DIR"), ("echo:7=/x", "only http"), ("echo:7,discard:7", "two services")] {
            guard case let .failure(e) = ServiceSpec.parseList(text) else { Issue.record("\(text) parsed"); continue }
            #expect(e.description.contains(words), "\(e)")
        }
    }

    @Test func interfaceNamesAreCheckedBeforeAnySystemCall() {
        for name in ["", "a-name-that-is-too-long", "has space", "a/b"] {
            #expect(throws: PortError.badName(name)) { _ = try InterfaceRequest(name: name) }
        }
    }

    @Test func aMissingInterfaceIsNamed() {
        #expect(throws: PortError.noSuchDevice("skiffnosuch0")) { _ = try InterfaceControl.index(of: "skiffnosuch0") }
        #expect(PortError.busy(device: "tap0").description == "device tap0 is busy: another process is attached to it")
    }

    @Test func waitingForAnInterfaceThatIsMissingOrBadlyNamedReturnsAtOnce() {
        // No interface to wait for: false without sleeping out the limit (an hour here).
        for name in ["skiffnosuch0", "", "a-name-that-is-too-long", "a/b"] {
            #expect(!InterfaceControl.waitUntilRunning(name, limit: 3600 * Time.second))
        }
    }

    @Test func theReportIsValidJSONAndText() throws {
        var r = StatusReport()
        r.add("interfaces (ip -s link)", [[("name", .text("tap\"0")), ("mtu", .int(1500)), ("cpu", .double(1.5))]])
        r.add("drops", [[]])
        let obj = try JSONSerialization.jsonObject(with: Data(r.json.utf8)) as? [String: Any]
        let rows = obj?["interfaces"] as? [[String: Any]]
        #expect(rows?.first?["name"] as? String == "tap\"0")
        #expect(rows?.first?["mtu"] as? Int == 1500)
        #expect(r.text.contains("interfaces (ip -s link):\n  name tap\"0  mtu 1500"))
    }
}
