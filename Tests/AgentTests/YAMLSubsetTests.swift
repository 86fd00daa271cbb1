import Testing

@testable import Agent
@testable import Tunnel

/// Parses `text`, recording an issue (and returning `.null`) if it throws.
private func parse(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> YAMLSubset.Node {
    do {
        return try YAMLSubset.parse(text)
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        return .null
    }
}

/// The error `text` is refused with, recording an issue if it parses.
private func parseError(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> YAMLSubset.ParseError? {
    do {
        let node = try YAMLSubset.parse(text)
        Issue.record("expected a ParseError, got \(node)", sourceLocation: sourceLocation)
    } catch {
        return error
    }
    return nil
}

@Suite struct YAMLSubsetTests {
    @Test func nestedMappings() {
        let node = parse(
            """
            apiVersion: v1
            cluster:
              server: https://10.0.0.1:6443
              tls:
                insecure: true
            kind: Config
            """)
        #expect(
            node
                == .mapping([
                    "apiVersion": .scalar("v1"),
                    "cluster": .mapping([
                        "server": .scalar("https://10.0.0.1:6443"),
                        "tls": .mapping(["insecure": .scalar("true")]),
                    ]),
                    "kind": .scalar("Config"),
                ]))
    }

    @Test func sequencesOfMappingsAtTheParentsIndentationAndIndented() {
        let node = parse(
            """
            clusters:
            - cluster:
                server: https://a
              name: a
            - name: b
              cluster: {}
            users:
              - name: u
                user:
                  token: t
              -   name: v
            names:
            - x
            -
              - nested
            """)
        #expect(
            node
                == .mapping([
                    "clusters": .sequence([
                        .mapping(["cluster": .mapping(["server": .scalar("https://a")]), "name": .scalar("a")]),
                        .mapping(["name": .scalar("b"), "cluster": .mapping([:])]),
                    ]),
                    "users": .sequence([
                        .mapping(["name": .scalar("u"), "user": .mapping(["token": .scalar("t")])]),
                        .mapping(["name": .scalar("v")]),
                    ]),
                    "names": .sequence([.scalar("x"), .sequence([.scalar("nested")])]),
                ]))
    }

    @Test func quotedScalarsWithEscapesAndHashes() {
        let node = parse(
            #"""
            double: "a \"b\" \\ \t \n \u00e9 \x41 \U0001F600 # not a comment" # a comment
            single: 'it''s # here \n'
            "quoted key": 'v'
            empty: ""
            colon: "a: b"
            surrogate: "\ud83d\ude00"
            """#)
        #expect(
            node
                == .mapping([
                    "double": .scalar("a \"b\" \\ \t \n é A 😀 # not a comment"),
                    "single": .scalar("it's # here \\n"),
                    "quoted key": .scalar("v"),
                    "empty": .scalar(""),
                    "colon": .scalar("a: b"),
                    "surrogate": .scalar("😀"),
                ]))
    }

    /// Found by the kubeconfig fuzz target: quoted scalars were read by Character, so a combining mark after an
    /// escape's digits made `\u0041` "need 4 hex digits", and one after a quote or a backslash hid it.
    @Test func quotedScalarsAreReadByUnicodeScalar() {
        #expect(parse("a: \"\\u0041\u{301}\"\nb: '\u{301}''\u{301}'\n\"\u{614}k\": []") == .mapping([
            "a": .scalar("A\u{301}"), "b": .scalar("\u{301}'\u{301}"), "\u{614}k": .sequence([]),
        ]))
        #expect(parse("\"\u{614}x\"") == .scalar("\u{614}x"))
        let backslashThenMark = parseError("a: \"\\\u{301}\"")
        let unknownEscape = "unknown escape `\\\u{301}` in a double-quoted string"
        #expect(backslashThenMark?.reason == unknownEscape)
        let signedDigits = parseError(#"a: "\u+041""#)
        #expect(signedDigits?.reason == #"escape `\u` needs 4 hex digits"#)
    }

    /// Block style had no depth limit: 100,000 nested `- ` overflowed the stack, and 65 levels read as YAML but were
    /// refused as JSON (found by the kubeconfig fuzz target's JSON round trip).
    @Test func nestingStopsAtTheJSONLimit() {
        func nested(_ depth: Int) -> YAMLSubset.Node {
            depth == 0 ? .scalar("x") : .sequence([nested(depth - 1)])
        }
        #expect(parse(String(repeating: "- ", count: 63) + "x") == nested(63))
        #expect(parseError(String(repeating: "- ", count: 64) + "x")?.reason == "nested deeper than 64 levels")
        #expect(parseError(String(repeating: "- ", count: 100_000) + "x")?.reason == "nested deeper than 64 levels")
        let mappings = (0..<80).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n")
        #expect(parseError(mappings)?.line == 64)
    }

    @Test func commentsAndBlankLines() {
        let node = parse(
            """
            # kubeconfig
            ---
            a: 1 # trailing

              # indented comment
            b:   # nothing here
            c: x#y
            d: https://host/#frag
            """)
        #expect(
            node
                == .mapping([
                    "a": .scalar("1"), "b": .null, "c": .scalar("x#y"), "d": .scalar("https://host/#frag"),
                ]))
    }

    @Test func emptyCollectionsAndNulls() {
        let node = parse("preferences: {}\nextensions: [ ]\nnone: ~\nalso: null\nquoted: \"null\"\nlast:\n")
        #expect(
            node
                == .mapping([
                    "preferences": .mapping([:]), "extensions": .sequence([]), "none": .null, "also": .null,
                    "quoted": .scalar("null"), "last": .null,
                ]))
        #expect(parse("") == .null)
        #expect(parse("# only a comment\n") == .null)
    }

    @Test func scalarsStayText() {
        let node = parse("bool: true\nport: 8443\nquotedPort: \"8443\"\nfloat: 1.50\noctal: 0755\nyes: no\n")
        #expect(
            node
                == .mapping([
                    "bool": .scalar("true"), "port": .scalar("8443"), "quotedPort": .scalar("8443"),
                    "float": .scalar("1.50"), "octal": .scalar("0755"), "yes": .scalar("no"),
                ]))
    }

    @Test func multilineScalarsFold() {
        let node = parse(
            """
            plain: first
              second

              third
            quoted: "one
              two \\
              three"
            items:
            - a
              b
            next: x
            """)
        #expect(
            node
                == .mapping([
                    "plain": .scalar("first second\nthird"), "quoted": .scalar("one two three"),
                    "items": .sequence([.scalar("a b")]), "next": .scalar("x"),
                ]))
    }

    @Test func crlfLineEndingsAndByteOrderMark() {
        #expect(
            parse("\u{FEFF}a: 1\r\nb:\r\n  c: 'x'\r\n")
                == .mapping(["a": .scalar("1"), "b": .mapping(["c": .scalar("x")])]))
    }

    @Test func json() {
        let node = parse(
            #"""
            {
              "kind": "Config",
              "clusters": [{"name": "a", "cluster": {"server": "https://a:6443", "insecure-skip-tls-verify": true}}],
              "preferences": {},
              "users": [],
              "n": -1.5e3,
              "escapes": "q\" b\\ s\/ \u00e9 \ud83d\ude00 \n",
              "none": null
            }
            """#)
        #expect(
            node
                == .mapping([
                    "kind": .scalar("Config"),
                    "clusters": .sequence([
                        .mapping([
                            "name": .scalar("a"),
                            "cluster": .mapping([
                                "server": .scalar("https://a:6443"), "insecure-skip-tls-verify": .scalar("true"),
                            ]),
                        ])
                    ]),
                    "preferences": .mapping([:]),
                    "users": .sequence([]),
                    "n": .scalar("-1.5e3"),
                    "escapes": .scalar("q\" b\\ s/ é 😀 \n"),
                    "none": .null,
                ]))
    }

    @Test(arguments: [
        // Tabs for indentation.
        ("a:\n\tb: 1\n", 2, "tab"),
        ("a:\n  b: 1\n  \tc: 2\n", 3, "tab"),
        // Inconsistent indentation: deeper, then shallower than the mapping it is in.
        ("a:\n  b: 1\n   c: 2\n", 3, "inconsistent indentation"),
        ("a:\n    b: 1\n  c: 2\n", 3, "inconsistent indentation"),
        ("a:\n  - x\n - y\n", 3, "inconsistent indentation"),
        ("a: 1\n- b\n", 2, "cannot mix"),
        // Unterminated quotes.
        ("a: \"open\nb: c\n", 1, "unterminated double-quoted string"),
        ("x: 1\na: 'open\n", 2, "unterminated single-quoted string"),
        ("a: \"closed\" trailing\n", 1, "unexpected text after a quoted value"),
        // Outside the subset.
        ("a: {b: 1}\n", 1, "flow collections"),
        ("a: [1, 2]\n", 1, "flow collections"),
        ("a: |\n  text\n", 1, "block scalars"),
        ("a: &x 1\n", 1, "anchors"),
        ("a: *x\n", 1, "anchors"),
        ("a: !!str 1\n", 1, "tags"),
        ("a: 1\n---\nb: 2\n", 2, "second document"),
        ("a: b: c\n", 1, "`: `"),
        ("a: 1\nb: 2\na: 3\n", 3, "duplicate key"),
        ("a: \"\\q\"\n", 1, "unknown escape"),
        // JSON.
        ("{\n  \"a\": 1,\n  \"b\": tru\n}\n", 3, "expected a JSON value"),
        ("{\n  \"a\": \"open\n}\n", 2, "unterminated JSON string"),
        ("{\"a\": 1}\n{}\n", 2, "after the JSON document"),
        ("[1,\n 2\n", 3, "`,` or `]`"),
    ])
    func refusesWithTheLine(text: String, line: Int, reason: String) {
        guard let error = parseError(text) else { return }
        #expect(error.line == line, "\(error)")
        #expect(error.reason.contains(reason), "\(error)")
        #expect(error.description.hasPrefix("line \(line): "))
    }
}
