import BerthIP
import Testing

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("0.0.0.0", "0.0.0.0"),
        ("10.88.0.1", "10.88.0.1"),
        ("255.255.255.255", "255.255.255.255"),
        ("::", "::"),
        ("::1", "::1"),
        ("fd00::1", "fd00::1"),
        ("FD00:0:0:0:0:0:0:1", "fd00::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  // first of two equal runs
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // a single zero group is not compressed
        ("2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:db8::ff00:42:8329"),
        ("fe80::", "fe80::"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("1::", "1::"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ])
    func parsesAndFormatsCanonically(text: String, canonical: String) throws {
        let address = try #require(IPAddress(text))
        #expect(address.description == canonical)
        #expect(IPAddress(canonical) == address)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1.2.3.-4", "1..3.4", " 1.2.3.4",
        ":", ":::", "1:2", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::8:9",
        "::1.2.3", "fe80::1%eth0", "g::1", "1:", ":1", "1:2:3:4:5:6:7:8::",
    ])
    func rejectsInvalidText(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func bytesAreNetworkOrder() throws {
        #expect(try #require(IPAddress("10.1.2.3")).bytes == [10, 1, 2, 3])
        let v6 = try #require(IPAddress("2001:db8::ff"))
        #expect(v6.bytes == [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [0xff])
        #expect(IPAddress(bytes: v6.bytes) == v6)
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
    }

    @Test func familiesNeverCompareEqual() throws {
        let v4 = try #require(IPAddress("0.0.0.1"))
        let v6 = try #require(IPAddress("::1"))
        #expect(v4 != v6)
        #expect(v4 < v6)
        #expect(v4.family == .v4 && v6.family == .v6)
    }
}

@Suite struct IPPrefixTests {
    @Test func keepsTheAddressAndComputesTheNetwork() throws {
        let prefix = try #require(IPPrefix("10.88.3.7/16"))
        #expect(prefix.description == "10.88.3.7/16")
        #expect(prefix.network.description == "10.88.0.0/16")
        #expect(!prefix.isNetwork)
        #expect(prefix.network.isNetwork)
    }

    @Test(arguments: [
        ("10.0.0.0/8", "10.255.255.255", true),
        ("10.0.0.0/8", "11.0.0.0", false),
        ("10.89.16.0/20", "10.89.31.255", true),
        ("10.89.16.0/20", "10.89.32.0", false),
        ("0.0.0.0/0", "203.0.113.9", true),
        ("192.0.2.1/32", "192.0.2.1", true),
        ("192.0.2.1/32", "192.0.2.2", false),
        ("fd00::/64", "fd00::ffff:ffff:ffff:ffff", true),
        ("fd00::/64", "fd00:0:0:1::", false),
        ("fd00::/56", "fd00:0:0:ff::1", true),
        ("fd00::/72", "fd00::ff:ffff:ffff:ffff", true),
        ("fd00::/72", "fd00::100:0:0:0", false),
        ("::/0", "2001:db8::1", true),
        ("fd00::1/128", "fd00::1", true),
        ("fd00::/64", "10.0.0.1", false),
        ("10.0.0.0/8", "::ffff:10.0.0.1", false),
    ])
    func containment(prefix: String, address: String, expected: Bool) throws {
        #expect(try #require(IPPrefix(prefix)).contains(try #require(IPAddress(address))) == expected)
    }

    @Test func networkOfWidePrefixes() throws {
        #expect(try #require(IPPrefix("2001:db8:abcd:12::5/48")).network.description == "2001:db8:abcd::/48")
        #expect(try #require(IPPrefix("2001:db8::ffff:1ff/120")).network.description == "2001:db8::ffff:100/120")
        #expect(try #require(IPPrefix("10.1.2.3/0")).network.description == "0.0.0.0/0")
        #expect(try #require(IPPrefix("fd00::1/0")).network.description == "::/0")
    }

    @Test(arguments: ["10.0.0.0", "10.0.0.0/33", "fd00::/129", "10.0.0.0/-1", "10.0.0.0/", "10.0.0.0/08", "x/8", "10.0.0.0/8/8"])
    func rejectsInvalidText(text: String) {
        #expect(IPPrefix(text) == nil)
    }
}

@Suite struct IPArithmeticTests {
    @Test func neighboursWrapWithinTheFamily() throws {
        #expect(IPAddress("10.0.0.255")!.next == IPAddress("10.0.1.0"))
        #expect(IPAddress("255.255.255.255")!.next == IPAddress("0.0.0.0"))
        #expect(IPAddress("0.0.0.0")!.previous == IPAddress("255.255.255.255"))
        #expect(IPAddress("fd00::ffff:ffff:ffff:ffff")!.next == IPAddress("fd00:0:0:1::"))
        #expect(IPAddress("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")!.next == IPAddress("::"))
        #expect(IPAddress("fd00:0:0:1::")!.previous == IPAddress("fd00::ffff:ffff:ffff:ffff"))
    }

    @Test func lastAddressAndCountOfAPrefix() throws {
        #expect(IPPrefix("10.88.0.0/16")!.lastAddress == IPAddress("10.88.255.255"))
        #expect(IPPrefix("10.88.0.0/16")!.addressCount == 65536)
        #expect(IPPrefix("10.0.0.0/0")!.lastAddress == IPAddress("255.255.255.255"))
        #expect(IPPrefix("fd00::/64")!.lastAddress == IPAddress("fd00::ffff:ffff:ffff:ffff"))
        #expect(IPPrefix("fd00::/64")!.addressCount == UInt128(1) << 64)
        #expect(IPPrefix("::/0")!.lastAddress == IPAddress("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
        #expect(IPPrefix("fd00::5/128")!.lastAddress == IPAddress("fd00::5"))
    }

    @Test func overlap() {
        #expect(IPPrefix("10.88.0.0/16")!.overlaps(IPPrefix("10.88.5.0/24")!))
        #expect(IPPrefix("10.88.5.0/24")!.overlaps(IPPrefix("10.0.0.0/8")!))
        #expect(!IPPrefix("10.88.0.0/16")!.overlaps(IPPrefix("10.89.0.0/16")!))
        #expect(!IPPrefix("10.88.0.0/16")!.overlaps(IPPrefix("fd00::/8")!))
    }

    @Test func valueRoundTrips() {
        for text in ["0.0.0.0", "10.88.3.4", "::", "fd00::1", "2001:db8::ffff:1"] {
            let address = IPAddress(text)!
            #expect(IPAddress(family: address.family, value: address.value) == address)
        }
        #expect(IPAddress(family: .v4, value: UInt128(UInt32.max) + 1) == nil)
    }
}
