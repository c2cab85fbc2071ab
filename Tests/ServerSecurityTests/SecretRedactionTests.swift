import Foundation
import ServerSecurity
import XCTest

final class SecretRedactionTests: XCTestCase {
    let redaction = SecretRedaction(fields: ["privateKey", "passphrase", "password", "token", "clientKey"])

    private func redact(_ json: String, with redaction: SecretRedaction? = nil) throws -> String {
        String(decoding: try (redaction ?? self.redaction).redact(json: Data(json.utf8)), as: UTF8.self)
    }

    func testSecretFieldsAreRedactedAtAnyDepth() throws {
        let input = """
        {"id":"web-1","connector":"nginx","config":{"host":"10.0.0.5","port":22,"sudo":true,"ratio":0.5,
         "privateKey":"-----BEGIN OPENSSH PRIVATE KEY-----\\nAAAA\\n-----END OPENSSH PRIVATE KEY-----",
         "passphrase":null,"nested":[{"token":"eyJhbGciOi","name":"a"},{"Password":"hunter2"}]},
         "clientKey":{"pem":"x"},"tags":["password","token"]}
        """
        let output = try redact(input)
        XCTAssertEqual(output, #"{"clientKey":"<redacted>","config":{"host":"10.0.0.5","nested":[{"name":"a","token":"<redacted>"},{"Password":"<redacted>"}],"passphrase":null,"port":22,"privateKey":"<redacted>","ratio":0.5,"sudo":true},"connector":"nginx","id":"web-1","tags":["password","token"]}"#)
        for secret in ["AAAA", "eyJhbGciOi", "hunter2", "\"pem\""] {
            XCTAssertFalse(output.contains(secret), secret)
        }
    }

    func testPresenceStyle() throws {
        let presence = SecretRedaction(fields: ["password", "token"], style: .presence)
        XCTAssertEqual(try redact(#"{"password":"hunter2","token":null,"user":"root"}"#, with: presence),
                       #"{"password":{"set":true},"token":{"set":false},"user":"root"}"#)
    }

    func testTopLevelArraysAndEncodables() throws {
        XCTAssertEqual(try redact(#"[{"token":"t"},{"token":""}]"#), #"[{"token":"<redacted>"},{"token":"<redacted>"}]"#)

        struct Target: Encodable {
            var id: String
            var config: [String: String]
        }
        let data = try redaction.redact(encoding: Target(id: "t1", config: ["password": "hunter2", "user": "deploy"]))
        XCTAssertEqual(String(decoding: data, as: UTF8.self), #"{"config":{"password":"<redacted>","user":"deploy"},"id":"t1"}"#)
    }

    func testValuesArePreserved() throws {
        XCTAssertEqual(try redact(#"{"a":1,"b":-7,"c":1.25,"d":false,"e":null,"f":"x/y","g":9007199254740993}"#),
                       #"{"a":1,"b":-7,"c":1.25,"d":false,"e":null,"f":"x/y","g":9007199254740993}"#)
    }

    func testNotJSONThrows() {
        XCTAssertThrowsError(try redaction.redact(json: Data("not json".utf8)))
    }
}
