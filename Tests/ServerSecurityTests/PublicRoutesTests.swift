import ServerSecurity
import XCTest

final class PublicRoutesTests: XCTestCase {
    func testExactlyTheContractRoutes() {
        XCTAssertEqual(PublicRoutes.all, [
            HTTPRoute("GET", "/health"),
            HTTPRoute("GET", "/ready"),
            HTTPRoute("GET", "/api/v1/auth/info"),
            HTTPRoute("GET", "/api/v1/version"),
        ])
        XCTAssertEqual(Set(PublicRoutes.all).count, PublicRoutes.all.count)
    }

    func testContains() {
        for route in PublicRoutes.all {
            XCTAssertTrue(PublicRoutes.contains(method: route.method, path: route.path), "\(route)")
        }
        XCTAssertTrue(PublicRoutes.contains(method: "GET", path: "/health?verbose=1"))
        let notPublic: [(String, String)] = [
            ("POST", "/health"), ("HEAD", "/health"), ("get", "/health"), ("DELETE", "/api/v1/version"),
            ("GET", "/health/"), ("GET", "/Health"), ("GET", "/heal%74h"), ("GET", "//health"),
            ("GET", "/api/v1/targets"), ("GET", "/api/v1/auth"), ("GET", "/api/v1/auth/info/../../targets"),
            ("GET", "/api/v1/targets?/health"), ("GET", ""), ("GET", "/"),
        ]
        for (method, path) in notPublic {
            XCTAssertFalse(PublicRoutes.contains(method: method, path: path), "\(method) \(path)")
        }
    }
}
