import BerthJSON
import Testing

@Suite struct JSONParsingTests {
    @Test func parsesEveryKindOfValue() throws {
        let json = try JSON.parse(#" {"a": [1, -2.5e3, true, false, null, "x"], "b": {}} "#)
        #expect(json == .object([
            "a": .array([.int(1), .number(JSONNumber(literal: "-2.5e3")!), .bool(true), .bool(false), .null, .string("x")]),
            "b": .object([:]),
        ]))
    }

    @Test func keepsMemberOrderAndLetsTheLastDuplicateWin() throws {
        guard case .object(let object) = try JSON.parse(#"{"z":1,"a":2,"m":3,"a":4}"#) else {
            Issue.record("not an object")
            return
        }
        #expect(object.keys == ["z", "a", "m", "a"])
        #expect(object["a"] == .int(4))
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let json = try JSON.parse(#""q\" b\\ s\/ \b\f\n\r\t \u00e9 \ud83d\ude00 \ud800x""#)
        #expect(json == .string("q\" b\\ s/ \u{08}\u{0C}\n\r\t é 😀 \u{FFFD}x"))
    }

    @Test func keepsNumberLiteralsExactly() throws {
        let json = try JSON.parse("[18446744073709551616, 0.1, 1E+2]")
        #expect(json.serialized() == "[18446744073709551616,0.1,1E+2]")
        #expect(JSONCursor(json).value == json)
    }

    @Test(arguments: [
        ("", "empty document"),
        ("   ", "empty document"),
        ("{", "expected a member name"),
        (#"{"a":1,}"#, "expected a member name"),
        ("[1,]", "unexpected character"),
        ("[1 2]", "expected ',' or ']'"),
        ("01", "unexpected content after the document"),
        ("-", "invalid number"),
        ("1.", "invalid number"),
        ("1e", "invalid number"),
        ("tru", "invalid literal"),
        (#""abc"#, "unterminated string"),
        ("\"a\u{01}b\"", "control character in string"),
        (#""\x""#, "invalid escape"),
        (#""\u12g4""#, #"invalid \u escape"#),
        (#"{"a":1} x"#, "unexpected content after the document"),
        ("'a'", "unexpected character"),
    ])
    func rejectsMalformedDocuments(text: String, reason: String) {
        #expect(throws: JSONParseError.self) { try JSON.parse(text) }
        do {
            _ = try JSON.parse(text)
        } catch {
            #expect(error.reason == reason)
        }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSON.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test func boundsNestingDepth() throws {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParseError.self) { try JSON.parse(deep) }
        let fine = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        _ = try JSON.parse(fine)
    }
}

@Suite struct JSONWritingTests {
    @Test func compactOutputKeepsOrderAndEscapes() {
        let json: JSON = .object(["b": .string("a\"\\\n\u{01}é"), "a": .array([]), "c": .object([:])])
        #expect(json.serialized() == #"{"b":"a\"\\\n\u0001é","a":[],"c":{}}"#)
    }

    @Test func prettyOutputIndentsByFourSpaces() {
        let json: JSON = .object(["cniVersion": .string("1.0.0"), "ips": .array([.object(["address": .string("10.0.0.2/24")])])])
        #expect(json.serialized(pretty: true) == """
            {
                "cniVersion": "1.0.0",
                "ips": [
                    {
                        "address": "10.0.0.2/24"
                    }
                ]
            }
            """)
    }

    @Test func roundTripsThroughTheParser() throws {
        let text = #"{"name":"berth","n":[1,2.5,-3],"deep":{"x":null,"y":true,"s":"\u0007\t"}}"#
        let json = try JSON.parse(text)
        #expect(try JSON.parse(json.serialized()) == json)
        #expect(try JSON.parse(json.serialized(pretty: true)) == json)
    }

    @Test func settingAMemberReplacesInPlaceAndRemovesDuplicates() throws {
        guard case .object(var object) = try JSON.parse(#"{"a":1,"b":2,"a":3}"#) else { return }
        object["a"] = .int(9)
        #expect(JSON.object(object).serialized() == #"{"a":9,"b":2}"#)
        object["c"] = .null
        object["b"] = nil
        #expect(JSON.object(object).serialized() == #"{"a":9,"c":null}"#)
    }
}

@Suite struct JSONCursorTests {
    @Test func namesThePathOfAMismatch() throws {
        let root = JSONCursor(try JSON.parse(#"{"ipam":{"ranges":[[{"subnet":7}]]}}"#))
        let subnet = try root.member("ipam")?.member("ranges")?.array()[0].array()[0].member("subnet")
        #expect(subnet?.path == "ipam.ranges[0][0].subnet")
        #expect(throws: JSONShapeError(path: "ipam.ranges[0][0].subnet", problem: "expected a string, found a number")) {
            try subnet?.string()
        }
    }

    @Test func treatsNullAsAbsent() throws {
        let root = JSONCursor(try JSON.parse(#"{"a":null}"#))
        #expect(root.member("a") == nil)
        #expect(root.member("b") == nil)
    }

    @Test func readsIntegersButNotFractions() throws {
        let root = JSONCursor(try JSON.parse(#"{"mtu":1500,"bad":1.5}"#))
        #expect(try root.member("mtu")?.int() == 1500)
        #expect(throws: JSONShapeError(path: "bad", problem: "expected an integer, found 1.5")) {
            try root.member("bad")?.int()
        }
    }
}
