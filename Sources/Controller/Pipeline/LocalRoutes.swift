import Foundation
import Tunnel

/// A response the controller writes itself.
struct LocalResponse: Sendable, Equatable {
    var status: Int
    var headers: [HTTPField]
    var body: [UInt8]

    /// A JSON body from an `Encodable` value.
    static func json(_ value: some Encodable, status: Int = 200) -> LocalResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? encoder.encode(value)).map { Array($0) + [UInt8(ascii: "\n")] } ?? []
        return LocalResponse(status: status, headers: [HTTPField("content-type", "application/json")], body: body)
    }
}

/// One route the controller serves on the service listener itself, by exact path.
struct LocalRoute: Sendable {
    var path: String
    var methods: Set<String>
    var respond: @Sendable (UserRequest) -> LocalResponse
}

/// The controller's own routes on the service listener, looked up before a request is authenticated: what is
/// here is public. Everything else goes to an agent.
struct LocalRoutes: Sendable {
    private var routes: [String: LocalRoute] = [:]

    init(_ routes: [LocalRoute] = []) {
        for route in routes { self.register(route) }
    }

    mutating func register(_ route: LocalRoute) {
        precondition(self.routes[route.path] == nil, "two local routes for \(route.path)")
        self.routes[route.path] = route
    }

    /// The route for the request's path and method, if the controller serves it.
    func route(for request: UserRequest) -> LocalRoute? {
        guard !self.routes.isEmpty, let route = self.routes[String(request.path)],
              route.methods.contains(request.method) else { return nil }
        return route
    }
}

/// `GET /.well-known/porthole`: what this is and where users reach it, so a tool can tell a Porthole controller
/// from anything else behind a URL (and check the versions) before it sends credentials.
enum WellKnownRoute {
    static let path = "/.well-known/porthole"

    struct Document: Encodable, Equatable {
        var service = "porthole"
        var version: String
        var protocolVersion: Int
        var serviceURL: String
        var instance: String
    }

    static func route(serviceURL: String, instance: String) -> LocalRoute {
        let document = Document(version: portholeVersion, protocolVersion: TunnelProtocol.version,
                                serviceURL: serviceURL, instance: instance)
        return LocalRoute(path: self.path, methods: ["GET", "HEAD"]) { _ in .json(document) }
    }
}
