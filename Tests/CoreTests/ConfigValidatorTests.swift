import Core
import Foundation
import TestSupport
import XCTest

final class ConfigValidatorTests: XCTestCase {
    static let verifyFields: [ConfigField] = [
        ConfigField("enabled", .boolean, default: .bool(true), "Verify."),
        ConfigField("host", .string, "Host."),
        ConfigField("port", .integer(minimum: 1, maximum: 65535), default: .number(443), "Port."),
    ]

    static let fields: [ConfigField] = [
        ConfigField("name", .string, required: true, "Name."),
        ConfigField("count", .integer(minimum: 1, maximum: 10), default: .number(3), "Count."),
        ConfigField("enabled", .boolean, default: .bool(false), "Enabled."),
        ConfigField("stapling", .choice(["auto", "off"]), default: .string("auto"), "Stapling."),
        ConfigField("path", .absolutePath, "Path."),
        ConfigField("mode", .fileMode, default: .string("0600"), "Mode."),
        ConfigField("command", .argv, "Command."),
        ConfigField("tags", .stringArray, "Tags."),
        ConfigField("labels", .stringMap, "Labels."),
        ConfigField("password", .string, secret: true, "Password."),
        ConfigField("verify", .object(verifyFields), "Verify settings."),
        // An optional object none of whose fields has a default: not materialised.
        ConfigField("extra", .object([ConfigField("note", .string, "Note.")]), "Extra."),
    ]

    private func json(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> JSONValue {
        do {
            return try JSONValue.parse(Data(text.utf8))
        } catch {
            XCTFail("bad test JSON \(text): \(error)", file: file, line: line)
            return .null
        }
    }

    private func validate(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> (JSONValue, [ConfigIssue]) {
        ConfigValidator.validate(json(text, file: file, line: line), fields: Self.fields)
    }

    private func issues(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [ConfigIssue] {
        validate(text, file: file, line: line).1
    }

    /// Exactly one issue, at `pointer`, whose message contains `fragment`.
    private func assertSingleIssue(_ text: String, pointer: String, contains fragment: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        let found = issues(text, file: file, line: line)
        XCTAssertEqual(found.map(\.pointer), [pointer], "\(text) → \(found)", file: file, line: line)
        if let fragment, let message = found.first?.message {
            XCTAssertTrue(message.contains(fragment), "\"\(message)\" should contain \"\(fragment)\"", file: file, line: line)
        }
    }

    private func assertValid(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        let found = issues(text, file: file, line: line)
        XCTAssertEqual(found, [], "\(text)", file: file, line: line)
    }

    // MARK: - Defaults

    func testDefaultsAreFilledInIncludingNestedObjects() {
        let (normalized, found) = validate(#"{"name": "web"}"#)
        XCTAssertEqual(found, [])
        XCTAssertEqual(normalized, .object([
            "name": .string("web"),
            "count": .number(3),
            "enabled": .bool(false),
            "stapling": .string("auto"),
            "mode": .string("0600"),
            "verify": .object(["enabled": .bool(true), "port": .number(443)]),
        ]))
        XCTAssertNil(normalized["extra"], "an object without defaults is not invented")
        XCTAssertNil(normalized["path"])
    }

    func testGivenValuesWinOverDefaultsAndNestedDefaultsFillGaps() {
        let (normalized, found) = validate(#"{"name": "web", "count": 7, "verify": {"host": "h.example"}, "extra": {"note": "n"}}"#)
        XCTAssertEqual(found, [])
        XCTAssertEqual(normalized["count"], .number(7))
        XCTAssertEqual(normalized["verify"], .object(["enabled": .bool(true), "host": .string("h.example"), "port": .number(443)]))
        XCTAssertEqual(normalized["extra"], .object(["note": .string("n")]))
    }

    func testNullCountsAsAbsent() {
        let (normalized, found) = validate(#"{"name": "web", "count": null}"#)
        XCTAssertEqual(found, [])
        XCTAssertEqual(normalized["count"], .number(3))
        assertSingleIssue(#"{"name": null}"#, pointer: "/name", contains: "is required")
    }

    // MARK: - Unknown and missing fields

    func testUnknownFieldIsReportedWithPointer() {
        assertSingleIssue(#"{"name": "web", "bogus": 1}"#, pointer: "/bogus", contains: "unknown field")
        let message = issues(#"{"name": "web", "bogus": 1}"#).first?.message ?? ""
        XCTAssertFalse(message.contains("did you mean"), message)
    }

    func testUnknownFieldDifferingOnlyInCaseSuggestsTheRightName() {
        assertSingleIssue(#"{"name": "web", "Count": 4}"#, pointer: "/Count", contains: #"did you mean "count"?"#)
        // The misspelt field is not silently used.
        XCTAssertEqual(validate(#"{"name": "web", "Count": 4}"#).0["count"], .number(3))
    }

    func testUnknownNestedField() {
        assertSingleIssue(#"{"name": "web", "verify": {"prot": 8443}}"#, pointer: "/verify/prot", contains: "unknown field")
        assertSingleIssue(#"{"name": "web", "verify": {"Port": 8443}}"#, pointer: "/verify/Port", contains: #"did you mean "port"?"#)
    }

    func testPointerTokensAreEscaped() {
        assertSingleIssue(#"{"name": "web", "a/b": 1}"#, pointer: "/a~1b")
        assertSingleIssue(#"{"name": "web", "a~b": 1}"#, pointer: "/a~0b")
    }

    func testMissingRequired() {
        assertSingleIssue("{}", pointer: "/name", contains: "is required")
    }

    func testAllIssuesAreReportedTogether() {
        let found = issues(#"{"count": 0, "stapling": "on", "bogus": true, "verify": {"port": 70000}}"#)
        XCTAssertEqual(Set(found.map(\.pointer)), ["/name", "/count", "/stapling", "/bogus", "/verify/port"], "\(found)")
    }

    func testTopLevelMustBeObject() {
        let (_, found) = ConfigValidator.validate(.array([]), fields: Self.fields)
        XCTAssertEqual(found.count, 1)
        XCTAssertEqual(found.first?.pointer, "")
        XCTAssertTrue(found.first?.message.contains("must be an object, got array") == true)
        XCTAssertEqual(found.first?.description, "/: must be an object, got array")
    }

    // MARK: - Types

    func testWrongTypes() {
        assertSingleIssue(#"{"name": 5}"#, pointer: "/name", contains: "must be a string, got integer")
        assertSingleIssue(#"{"name": "web", "enabled": "yes"}"#, pointer: "/enabled", contains: "must be true or false")
        assertSingleIssue(#"{"name": "web", "count": "3"}"#, pointer: "/count", contains: "must be an integer, got string")
        assertSingleIssue(#"{"name": "web", "count": 2.5}"#, pointer: "/count", contains: "must be an integer, got number")
        assertSingleIssue(#"{"name": "web", "tags": ["a", 1]}"#, pointer: "/tags", contains: "array of strings")
        assertSingleIssue(#"{"name": "web", "tags": "a"}"#, pointer: "/tags", contains: "array of strings")
        assertSingleIssue(#"{"name": "web", "labels": {"a": 1}}"#, pointer: "/labels", contains: "object of string values")
        assertSingleIssue(#"{"name": "web", "labels": ["a"]}"#, pointer: "/labels", contains: "object of string values")
        assertSingleIssue(#"{"name": "web", "verify": 5}"#, pointer: "/verify", contains: "must be an object, got integer")
        assertSingleIssue(#"{"name": "web", "verify": {"port": "443"}}"#, pointer: "/verify/port", contains: "must be an integer")
        assertSingleIssue(#"{"name": "web", "path": 1}"#, pointer: "/path", contains: "must be a string path")
        assertSingleIssue(#"{"name": "a\u0000b"}"#, pointer: "/name", contains: "NUL")
        assertValid(#"{"name": "web", "tags": [], "labels": {}, "password": "hunter22", "count": 4.0}"#)
    }

    func testIntegerBounds() {
        assertSingleIssue(#"{"name": "web", "count": 0}"#, pointer: "/count", contains: "at least 1")
        assertSingleIssue(#"{"name": "web", "count": -3}"#, pointer: "/count", contains: "at least 1")
        assertSingleIssue(#"{"name": "web", "count": 11}"#, pointer: "/count", contains: "at most 10")
        assertSingleIssue(#"{"name": "web", "verify": {"port": 0}}"#, pointer: "/verify/port", contains: "at least 1")
        assertSingleIssue(#"{"name": "web", "verify": {"port": 65536}}"#, pointer: "/verify/port", contains: "at most 65535")
        assertValid(#"{"name": "web", "count": 1}"#)
        assertValid(#"{"name": "web", "count": 10}"#)
        assertValid(#"{"name": "web", "verify": {"port": 65535}}"#)
    }

    func testChoice() {
        assertSingleIssue(#"{"name": "web", "stapling": "on"}"#, pointer: "/stapling", contains: #"must be one of "auto", "off""#)
        assertSingleIssue(#"{"name": "web", "stapling": "AUTO"}"#, pointer: "/stapling")
        assertSingleIssue(#"{"name": "web", "stapling": true}"#, pointer: "/stapling")
        assertValid(#"{"name": "web", "stapling": "off"}"#)
    }

    // MARK: - Paths

    func testAbsolutePathRejectsUnsafePaths() {
        let bad: [(String, String)] = [
            ("etc/nginx/a.pem", "absolute"),
            ("./a.pem", "absolute"),
            ("", "empty"),
            ("/etc/nginx/../shadow", ".."),
            ("/etc/nginx/./a.pem", "."),
            ("//etc/a.pem", "//"),
            ("/etc//a.pem", "//"),
            ("/etc/nginx/", "trailing /"),
            ("/", "not /"),
            ("/etc/a.pem\n", "newline"),
            ("/etc/a\r.pem", "newline"),
            ("/etc/a\u{0}.pem", "NUL"),
            ("/etc/a\r\n.pem", "newline"),
            ("/etc/é/../x", ".."),
        ]
        for (path, fragment) in bad {
            let value = JSONValue.object(["name": .string("web"), "path": .string(path)])
            let found = ConfigValidator.validate(value, fields: Self.fields).1
            XCTAssertEqual(found.map(\.pointer), ["/path"], "\(path.debugDescription) → \(found)")
            XCTAssertTrue(found.first?.message.contains(fragment) == true, "\(path.debugDescription): \(found)")
            XCTAssertNotNil(RemotePath.problem(with: path), path.debugDescription)
        }
        for path in ["/etc/nginx/certs/example.com.pem", "/a", "/srv/with space/x.pem", "/etc/..hidden/x", "/etc/.well-known/a"] {
            assertValid(JSONValue.object(["name": .string("web"), "path": .string(path)]).jsonText(pretty: false))
            XCTAssertNil(RemotePath.problem(with: path), path)
        }
    }

    func testConfigSafePathsRefuseWhitespaceAndConfigSyntaxInAnyScript() {
        let refused = ["/etc/a b.pem", "/etc/a\tb", "/etc/a;b", "/etc/{a}", "/etc/$a", "/etc/a\\b", "/etc/\"a\"", "/etc/'a'", "/etc/#a",
                       "/etc/a\u{00A0}b", "/etc/é\u{2003}x", "/etc/a\u{85}b", "/etc/é;x"]
        for path in refused {
            let issues = ConnectorKit.configSafePaths([("certificatePath", path)], syntax: "nginx config")
            XCTAssertEqual(issues.map(\.pointer), ["/certificatePath"], path.debugDescription)
        }
        for path in ["/etc/nginx/certs/example.com.pem", "/etc/é/ü.pem", "/srv/证书/a-b_c.pem", "/a"] {
            XCTAssertEqual(ConnectorKit.configSafePaths([("certificatePath", path)], syntax: "nginx config"), [], path)
        }
        XCTAssertEqual(ConnectorKit.configSafePaths([("chainPath", nil)], syntax: "nginx config"), [])
    }

    func testRemotePathHelpers() {
        XCTAssertEqual(RemotePath.directory(of: "/etc/nginx/a.pem"), "/etc/nginx")
        XCTAssertEqual(RemotePath.directory(of: "/a.pem"), "/")
        XCTAssertEqual(RemotePath.directory(of: "a.pem"), ".")
        XCTAssertEqual(RemotePath.basename(of: "/etc/nginx/a.pem"), "a.pem")
        XCTAssertEqual(RemotePath.basename(of: "a.pem"), "a.pem")
    }

    // MARK: - File modes

    func testFileModeField() {
        for mode in ["0600", "640", "0640", "644", "0755", "0000"] {
            assertValid(#"{"name": "web", "mode": "\#(mode)"}"#)
        }
        for mode in ["0800", "rw", "rw-------", "60", "06000", "", "0x1a", "+640", "-600", " 600", "6 0"] {
            assertSingleIssue(#"{"name": "web", "mode": "\#(mode)"}"#, pointer: "/mode", contains: "octal mode")
        }
        assertSingleIssue(#"{"name": "web", "mode": 600}"#, pointer: "/mode", contains: "octal mode")
    }

    func testFileModeValue() throws {
        XCTAssertEqual(FileMode(octal: "0600")?.rawValue, 0o600)
        XCTAssertEqual(FileMode(octal: "640")?.rawValue, 0o640)
        XCTAssertEqual(FileMode(octal: "4755")?.rawValue, 0o4755)
        XCTAssertNil(FileMode(octal: "0800"))
        XCTAssertNil(FileMode(octal: "rw"))
        XCTAssertNil(FileMode(octal: "+640"))
        XCTAssertNil(FileMode(octal: "-000"))
        XCTAssertEqual(FileMode(0o600).description, "0600")
        XCTAssertEqual(FileMode(0o40).description, "0040")
        XCTAssertEqual(FileMode(0o100644).rawValue, 0o644, "file type bits are masked off")
        XCTAssertEqual(FileMode.privateKey.description, "0600")
        XCTAssertEqual(FileMode.groupReadableKey.description, "0640")
        XCTAssertEqual(FileMode.publicFile.description, "0644")

        let encoded = try JSONEncoder().encode([FileMode(0o640)])
        XCTAssertEqual(String(decoding: encoded, as: UTF8.self), #"["0640"]"#)
        XCTAssertEqual(try JSONDecoder().decode([FileMode].self, from: Data(#"["644"]"#.utf8)), [FileMode(0o644)])
        XCTAssertThrowsError(try JSONDecoder().decode([FileMode].self, from: Data(#"["rw"]"#.utf8)))
    }

    // MARK: - argv

    func testArgv() {
        assertValid(#"{"name": "web", "command": ["nginx", "-t"]}"#)
        assertValid(#"{"name": "web", "command": ["printf", ""]}"#)
        assertSingleIssue(#"{"name": "web", "command": []}"#, pointer: "/command", contains: "empty argv")
        assertSingleIssue(#"{"name": "web", "command": "nginx -t"}"#, pointer: "/command", contains: "argv array")
        assertSingleIssue(#"{"name": "web", "command": ["nginx", 5]}"#, pointer: "/command/1", contains: "must be a string")
        assertSingleIssue(#"{"name": "web", "command": ["nginx", null]}"#, pointer: "/command/1", contains: "must be a string")
        assertSingleIssue(#"{"name": "web", "command": ["nginx", "-t\nrm -rf /"]}"#, pointer: "/command/1", contains: "newline")
        assertSingleIssue(#"{"name": "web", "command": ["nginx\r", "-t"]}"#, pointer: "/command/0", contains: "newline")
        assertSingleIssue(#"{"name": "web", "command": ["nginx", "a\u0000b"]}"#, pointer: "/command/1", contains: "NUL")
        assertSingleIssue(#"{"name": "web", "command": ["", "-t"]}"#, pointer: "/command/0", contains: "must not be empty")
    }

    // MARK: - Issues and errors

    func testConfigErrorDescriptionNamesConnectorAndPointers() {
        let error = ConfigError(connectorID: "nginx", issues: [ConfigIssue(pointer: "/keyPath", message: "is required"), ConfigIssue(pointer: "/x", message: "unknown field")])
        XCTAssertEqual(error.description, "nginx config: /keyPath: is required; /x: unknown field")
        XCTAssertEqual(ConfigError(issues: [ConfigIssue(pointer: "/a", message: "m")]).description, "config: /a: m")
    }

    // MARK: - JSON Schema

    func testSchema() throws {
        let schema = JSONSchemaWriter.schema(for: Self.fields, title: "Test target config")
        XCTAssertEqual(schema["type"], .string("object"))
        XCTAssertEqual(schema["additionalProperties"], .bool(false))
        XCTAssertEqual(schema["required"], .array([.string("name")]))
        XCTAssertEqual(schema["title"], .string("Test target config"))

        guard case .object(let properties) = schema["properties"] else { return XCTFail("no properties: \(schema.jsonText())") }
        XCTAssertEqual(Set(properties.keys), Set(Self.fields.map(\.name)))

        XCTAssertEqual(properties["password"]?["writeOnly"], .bool(true))
        XCTAssertEqual(properties["password"]?["type"], .string("string"))
        for (name, property) in properties where name != "password" {
            XCTAssertNil(property["writeOnly"], "\(name) is not a secret")
        }

        XCTAssertEqual(properties["name"]?["description"], .string("Name."))
        XCTAssertEqual(properties["count"]?["type"], .string("integer"))
        XCTAssertEqual(properties["count"]?["minimum"], .number(1))
        XCTAssertEqual(properties["count"]?["maximum"], .number(10))
        XCTAssertEqual(properties["count"]?["default"], .number(3))
        XCTAssertEqual(properties["stapling"]?["enum"], .array([.string("auto"), .string("off")]))
        XCTAssertEqual(properties["command"]?["type"], .string("array"))
        XCTAssertEqual(properties["command"]?["minItems"], .number(1))
        XCTAssertEqual(properties["mode"]?["pattern"], .string("^0?[0-7]{3}$"))
        XCTAssertEqual(properties["labels"]?["additionalProperties"], .object(["type": .string("string")]))

        let verify = properties["verify"]
        XCTAssertEqual(verify?["type"], .string("object"))
        XCTAssertEqual(verify?["additionalProperties"], .bool(false))
        XCTAssertEqual(verify?["description"], .string("Verify settings."))
        XCTAssertNil(verify?["required"], "no nested field is required")
        XCTAssertEqual(verify?["properties"]?["port"]?["default"], .number(443))
        XCTAssertEqual(verify?["properties"]?["port"]?["maximum"], .number(65535))

        // The schema is valid JSON text and stable.
        let text = schema.jsonText()
        XCTAssertEqual(try JSONValue.parse(Data(text.utf8)), schema)
        XCTAssertEqual(text, JSONSchemaWriter.schema(for: Self.fields, title: "Test target config").jsonText())
    }

    func testSchemaWithoutRequiredFieldsHasNoRequiredList() {
        let schema = JSONSchemaWriter.schema(for: Self.verifyFields)
        XCTAssertNil(schema["required"])
        XCTAssertNil(schema["title"])
        XCTAssertEqual(schema["additionalProperties"], .bool(false))
    }

    // MARK: - Shell quoting

    func testQuote() {
        XCTAssertEqual(ShellQuoting.quote("nginx"), "nginx")
        XCTAssertEqual(ShellQuoting.quote("/usr/sbin/nginx"), "/usr/sbin/nginx")
        XCTAssertEqual(ShellQuoting.quote("--config=/etc/a.conf"), "--config=/etc/a.conf")
        XCTAssertEqual(ShellQuoting.quote(""), "''")
        XCTAssertEqual(ShellQuoting.quote("a b"), "'a b'")
        XCTAssertEqual(ShellQuoting.quote("it's"), #"'it'\''s'"#)
        XCTAssertEqual(ShellQuoting.quote("$(id)"), "'$(id)'")
        XCTAssertEqual(ShellQuoting.commandLine(["nginx", "-s", "reload"]), "nginx -s reload")
        XCTAssertEqual(ShellQuoting.commandLine(["echo", "it's here"]), #"echo 'it'\''s here'"#)
        XCTAssertEqual(RemoteCommand(["nginx", "-t"]).description, "nginx -t")
    }

    /// The real shell must see exactly the original arguments, whatever they contain.
    func testQuotingRoundTripsThroughRealShell() throws {
        let directory = try TemporaryDirectory(prefix: "certdeploy-quote")
        defer { directory.remove() }
        let marker = directory.file("pwned")
        let arguments = [
            "it's", "a b  c", "$(touch \(marker))", "`touch \(marker)`", "$HOME", "${PATH}", "*", "~", "~root", "a\\b", "\"double\"",
            "", "semi;colon", "pipe|and&amp", "#hash", "tab\there", "multi\nline", "'", "''", "\\'", "!bang", "é ü 雪", "a=b", "-n",
            "> \(marker)", "%s\\n",
        ]
        let script = ShellQuoting.commandLine(["printf", "%s\\n"] + arguments)
        let result = try ProcessRunner.run("/bin/sh", ["-c", script], timeout: 10)
        XCTAssertTrue(result.succeeded, result.description)
        XCTAssertEqual(result.stdout, arguments.map { $0 + "\n" }.joined(), "script: \(script)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the shell ran something it should only have printed")

        for argument in arguments {
            let single = try ProcessRunner.run("/bin/sh", ["-c", "printf '%s\\n' " + ShellQuoting.quote(argument)], timeout: 10)
            XCTAssertEqual(single.stdout, argument + "\n", "quote(\(argument.debugDescription)) = \(ShellQuoting.quote(argument))")
        }
    }

    /// `NAME=value` as the first word is a variable assignment to the shell, not a command:
    /// argv semantics require the shell to try to run a program of that name.
    func testFirstWordIsNeverAnAssignment() throws {
        let line = ShellQuoting.commandLine(["CERTDEPLOY_ASSIGNMENT=1", "true"])
        let result = try ProcessRunner.run("/bin/sh", ["-c", line], timeout: 10)
        XCTAssertEqual(result.status, 127, "`\(line)` should fail with command not found: \(result)")
        // Only the first word is special; later words like --x=y stay readable.
        XCTAssertEqual(ShellQuoting.commandLine(["nginx", "-g", "a=b"]), "nginx -g a=b")
    }
}
