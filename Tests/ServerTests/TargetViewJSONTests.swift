import CertdeployAPI
import Core
import Foundation
import Hummingbird
@testable import Server
@testable import Store
import XCTest

/// The hand-written JSON paths of the target routes against the Codable ones they replaced: `TargetViewJSON` must
/// write the bytes `JSONEncoder.api` writes, and `TargetInput.decoded(from:)` must build what `JSONDecoder.api`
/// decodes, or fail naming the same field.
final class TargetViewJSONTests: XCTestCase {
    private static func views() -> [TargetView] {
        let date = Date(timeIntervalSince1970: 1_767_225_600.123)
        var plain = TargetView(
            id: UUID(), name: "web-1", connector: "nginx", labels: [:], certificate: nil,
            ssh: .object(["host": .string("10.0.0.1"), "port": .number(22), "user": .string("deploy"), "privateKey": .string("<redacted>")]),
            kubernetes: nil, config: .object([:]), createdAt: date, updatedAt: date, version: 1)
        var full = TargetView(
            id: UUID(), name: "a.b_c-d", connector: "k8s", labels: ["env": "prod", "Tier": "web/edge", "é": "\"q\"\n", "a10": "x", "a9": ""],
            certificate: "example.com", ssh: nil,
            kubernetes: .object(["namespace": .string("default"), "kubeconfig": .object(["$sealed": .string("<redacted>")])]),
            config: .object([
                "paths": .array([.string("/etc/ssl/a.pem"), .number(1.5), .number(1e21), .number(-0.0), .null, .bool(true)]),
                "nested": .object(["deep": .object(["x": .array([])])]), "url": .string("https://x/y?z=1&w=<2>"),
            ]),
            createdAt: Date(timeIntervalSince1970: 0), updatedAt: Date(timeIntervalSince1970: 1_999_999_999.999_9), version: 42,
            lastDeployment: DeploymentSummary(id: UUID(), status: "succeeded", certificate: "example.com", certificateVersion: 3,
                                              finishedAt: Date(timeIntervalSince1970: 1_700_000_000.5)))
        full.autoRemediate = true
        full.status = TargetStatusView(
            sync: "drifted", detail: "serves another leaf", checkedAt: date, servedSHA256: "ab", expectedSHA256: "cd", staple: "good",
            stapleDetail: "fresh", stapleThisUpdate: date, stapleNextUpdate: date.addingTimeInterval(86400), stapleCheckedAt: date)
        var partial = full
        partial.id = UUID()
        partial.status = TargetStatusView(sync: "in_sync")
        partial.lastDeployment = DeploymentSummary(id: UUID(), status: "failed", certificate: "c", certificateVersion: 1, finishedAt: nil)
        partial.autoRemediate = false
        plain.autoRemediate = false
        return [plain, full, partial]
    }

    func testSingleViewsAreTheBytesJSONEncoderWrites() throws {
        for view in Self.views() {
            XCTAssertEqual(String(decoding: try TargetViewJSON.data(view), as: UTF8.self),
                           String(decoding: try JSONEncoder.api.encode(view), as: UTF8.self))
        }
    }

    func testListsAreTheBytesJSONEncoderWrites() throws {
        let views = Self.views()
        for list in [ListResponse<TargetView>(items: []), ListResponse(items: views), ListResponse(items: views + views, nextCursor: "abc/+=")] {
            let written = try TargetViewJSON.data(list)
            XCTAssertEqual(String(decoding: written, as: UTF8.self), String(decoding: try JSONEncoder.api.encode(list), as: UTF8.self))
            let decoded = try JSONDecoder.api.decode(ListResponse<TargetView>.self, from: Data(written))
            XCTAssertEqual(decoded.items.map(\.id), list.items.map(\.id))
            XCTAssertEqual(decoded.items.map(\.config), list.items.map(\.config))
            XCTAssertEqual(decoded.nextCursor, list.nextCursor)
        }
    }

    /// The list writes configs from the stored text, redacting sealed values in the text: the same bytes as the
    /// parsed-and-redacted view, for every stored shape (sealed values at any depth, strings that only look sealed).
    func testListItemsFromStoredTextAreTheBytesOfTheParsedViews() throws {
        let codec = TargetCodec(registry: try ConnectorRegistry([]), vault: SecretVault(box: nil))
        let date = Date(timeIntervalSince1970: 1_767_225_600.123)
        func record(_ config: String, _ transport: String) -> TargetRecord {
            TargetRecord(id: UUID(), name: "t", labels: ["env": "prod"], connectorID: "nginx", configJSON: config, transportJSON: transport,
                         certificateName: "c", createdAt: date, updatedAt: date, version: 3)
        }
        let sealed = #"{"$sealed":"AAEC+/9=="}"#
        let records = [
            record(#"{"a":1,"path":"/etc/x"}"#, #"{"ssh":{"host":"h","password":\#(sealed),"user":"u"}}"#),
            record(#"{"deep":{"list":[\#(sealed),{"k":\#(sealed)}]},"token":\#(sealed)}"#, #"{"kubernetes":{"context":"c","kubeconfig":"/k"}}"#),
            record(#"{"looksSealed":"{\"$sealed\":\"x\"}","x":"\\"}"#, #"{"ssh":{"host":"h"}}"#),
            record("{}", "{}"),
        ]
        let items = records.map(codec.listItem)
        let views = records.map { codec.view($0) }
        XCTAssertEqual(String(decoding: try TargetViewJSON.data(items, nextCursor: "n"), as: UTF8.self),
                       String(decoding: try JSONEncoder.api.encode(ListResponse(items: views, nextCursor: "n")), as: UTF8.self))
        XCTAssertFalse(String(decoding: try TargetViewJSON.data(items, nextCursor: nil), as: UTF8.self).contains("AAEC"))
        XCTAssertNil(TargetCodec.redactedText(#"{"x":{"$sealed":"abc","more":1}}"#), "not a sealed value's exact form: parsed instead")
    }

    // MARK: TargetInput

    private func viaDecoder(_ body: String) -> Result<TargetInput, APIError> {
        do {
            return .success(try JSONDecoder.api.decode(TargetInput.self, from: Data(body.utf8)))
        } catch let error as DecodingError {
            return .failure(Request.apiError(error))
        } catch {
            return .failure(APIError.badRequest("\(error)"))
        }
    }

    private func viaMembers(_ body: String) throws -> Result<TargetInput, APIError> {
        guard case .object(let members) = try JSONValue.parse(Data(body.utf8)) else { throw APIError.badRequest("not an object") }
        do {
            guard let input = try TargetInput.decoded(from: members) else { throw APIError.badRequest("decoded(from:) gave nil") }
            return .success(input)
        } catch let error as APIError {
            return .failure(error)
        }
    }

    func testTargetInputIsWhatJSONDecoderBuildsOrFailsOnTheSameField() throws {
        let config = #""config":{"keyPath":"/etc/k.pem","port":443}"#
        let bodies = [
            #"{"name":"a","connector":"nginx","# + config + #","ssh":{"host":"h","port":22}}"#,
            #"{"name":"a","connector":"nginx","# + config + #","labels":{"env":"prod","x":"y"},"certificate":"c","version":3,"autoRemediate":true}"#,
            #"{"name":"a","connector":"nginx","# + config + #","labels":null,"certificate":null,"ssh":null,"kubernetes":{"n":1},"version":null,"autoRemediate":null}"#,
            #"{"name":"a","connector":"nginx","config":null}"#,
            #"{"name":"a","connector":"nginx","config":[1]}"#,
            #"{"name":5,"connector":"nginx","config":{}}"#,
            #"{"name":null,"connector":"nginx","config":{}}"#,
            #"{"connector":"nginx","config":{}}"#,
            #"{"name":"a","config":{}}"#,
            #"{"name":"a","connector":true,"config":{}}"#,
            #"{"name":"a","connector":"nginx"}"#,
            #"{"name":"a","connector":"nginx","config":{},"labels":[]}"#,
            #"{"name":"a","connector":"nginx","config":{},"labels":{"k":1}}"#,
            #"{"name":"a","connector":"nginx","config":{},"labels":{"k":null}}"#,
            #"{"name":"a","connector":"nginx","config":{},"certificate":7}"#,
            #"{"name":"a","connector":"nginx","config":{},"version":"3"}"#,
            #"{"name":"a","connector":"nginx","config":{},"version":true}"#,
            #"{"name":"a","connector":"nginx","config":{},"autoRemediate":"yes"}"#,
            #"{"name":"a","connector":"nginx","config":{},"autoRemediate":1}"#,
        ]
        for body in bodies {
            switch (viaDecoder(body), try viaMembers(body)) {
            case (.success(let a), .success(let b)):
                XCTAssertEqual(a.name, b.name, body)
                XCTAssertEqual(a.connector, b.connector, body)
                XCTAssertEqual(a.labels, b.labels, body)
                XCTAssertEqual(a.certificate, b.certificate, body)
                XCTAssertEqual(a.ssh, b.ssh, body)
                XCTAssertEqual(a.kubernetes, b.kubernetes, body)
                XCTAssertEqual(a.config, b.config, body)
                XCTAssertEqual(a.version, b.version, body)
                XCTAssertEqual(a.autoRemediate, b.autoRemediate, body)
            case (.failure(let a), .failure(let b)):
                XCTAssertEqual(a.errors.map(\.pointer), b.errors.map(\.pointer), body)
                XCTAssertEqual(a.errors.map(\.detail), b.errors.map(\.detail), body)
            case (let a, let b):
                XCTFail("\(body): JSONDecoder \(a), members \(b)")
            }
        }
    }
}
