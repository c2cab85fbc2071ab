import AWSClient
import Crypto
import Foundation
import XCTest

/// AWS Signature Version 4 against AWS's published vectors: the IAM `ListUsers` example of the SigV4 documentation
/// (its canonical-request hash, signing key and signature) and cases of the SigV4 test suite (`get-vanilla`,
/// `get-vanilla-query-order-key-case`, `get-utf8`), all signed with AWS's example key at 2015-08-30T12:36:00Z.
final class SigV4SignerTests: XCTestCase {
    let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    let date = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z

    func testTheDocumentedIAMExample() {
        let signature = SigV4Signer(service: "iam", region: "us-east-1").sign(
            method: "GET", path: "/", query: [("Version", "2010-05-08"), ("Action", "ListUsers")],
            headers: [("Host", "iam.amazonaws.com"), ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], payload: [],
            credentials: credentials, date: date)
        XCTAssertEqual(SigV4Signer.amzDate(date), "20150830T123600Z")
        XCTAssertEqual(hex(Array(SHA256.hash(data: Array(signature.canonicalRequest.utf8)))),
                       "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59", signature.canonicalRequest)
        let key = SigV4Signer.signingKey(secret: credentials.secretAccessKey, day: "20150830", region: "us-east-1", service: "iam")
        XCTAssertEqual(key.withUnsafeBytes { hex(Array($0)) }, "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9")
        XCTAssertEqual(signature.authorization,
                       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, "
                       + "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
        XCTAssertEqual(signature.headers.map(\.name), ["x-amz-date", "authorization"])
    }

    func testTheTestSuitesVanillaQueryOrderAndUTF8Cases() {
        let signer = SigV4Signer(service: "service", region: "us-east-1")
        func sign(_ path: String, _ query: [(String, String)] = []) -> String {
            signer.sign(method: "GET", path: path, query: query, headers: [("Host", "example.amazonaws.com")], payload: [], credentials: credentials,
                        date: date).authorization
        }
        let prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature="
        XCTAssertEqual(sign("/"), prefix + "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        XCTAssertEqual(sign("/", [("Param2", "value2"), ("Param1", "value1")]), prefix + "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
        XCTAssertEqual(sign("/ሴ"), prefix + "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85")
    }

    func testASessionTokenIsSignedAndSentAndAnyChangeChangesTheSignature() {
        let signer = SigV4Signer(service: "acm", region: "eu-west-1")
        let temporary = AWSCredentials(accessKeyID: "ASIAEXAMPLE", secretAccessKey: "secret", sessionToken: "token")
        let body = Array(#"{"CertificateArn":"arn:aws:acm:eu-west-1:123456789012:certificate/1"}"#.utf8)
        let headers = [("Host", "acm.eu-west-1.amazonaws.com"), ("X-Amz-Target", "CertificateManager.DescribeCertificate"),
                       ("Content-Type", "application/x-amz-json-1.1")]
        let signed = signer.sign(method: "POST", path: "/", headers: headers, payload: body, credentials: temporary, date: date)
        XCTAssertEqual(signed.signedHeaders, "content-type;host;x-amz-date;x-amz-security-token;x-amz-target")
        XCTAssertEqual(signed.headers.map(\.name), ["x-amz-date", "x-amz-security-token", "authorization"])
        XCTAssertEqual(signed.headers[1].value, "token")
        var other = body
        other[other.count - 3] = UInt8(ascii: "2")
        XCTAssertNotEqual(signer.sign(method: "POST", path: "/", headers: headers, payload: other, credentials: temporary, date: date).signature,
                          signed.signature, "the payload is signed")
        XCTAssertNotEqual(SigV4Signer(service: "acm", region: "us-east-1").sign(method: "POST", path: "/", headers: headers, payload: body,
                                                                                credentials: temporary, date: date).signature,
                          signed.signature, "the region is signed")
        XCTAssertNotEqual(signer.sign(method: "POST", path: "/", headers: headers, payload: body, credentials: temporary,
                                      date: date.addingTimeInterval(1)).signature, signed.signature, "the time is signed")
        XCTAssertEqual(SigV4Signer.encode("a b/c~d*é"), "a%20b%2Fc~d%2A%C3%A9")
    }

    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
}
