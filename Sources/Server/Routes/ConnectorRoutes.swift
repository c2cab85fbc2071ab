import CertdeployAPI
import Core
import Hummingbird

/// The registry, read-only: every connector built into this server.
enum ConnectorRoutes {
    static func add(to router: Router<APIRequestContext>, environment env: APIEnvironment) {
        router.get("/api/v1/connectors") { request, _ in
            try QueryReader(request: request).allowOnly([])
            let items = env.registry.connectors.map { ConnectorView(descriptor: $0.descriptor, configSchema: $0.descriptor.configSchema) }
            return try JSONResponse.make(ListResponse(items: items))
        }
        router.get("/api/v1/connectors/{id}") { _, context in
            let id = try context.parameters.require("id")
            guard let connector = env.registry.connector(id: id) else {
                throw APIError.notFound("no connector \"\(id)\" (known: \(env.registry.ids.joined(separator: ", ")))")
            }
            return try JSONResponse.make(ConnectorView(descriptor: connector.descriptor, configSchema: connector.descriptor.configSchema))
        }
    }
}
