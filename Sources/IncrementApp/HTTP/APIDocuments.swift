import Foundation

/// The OpenAPI description, the page that presents it and the status page, loaded once from
/// the bundle.
public struct APIDocuments: Sendable {
    /// `openapi.yaml`, the description the tests hold the server to.
    public let openAPI: String
    /// `docs.html`, a page that renders it.
    public let docsPage: String
    /// `status.html`, the cluster's status page (served at `/`).
    public let statusPage: String

    /// Loads both documents from this module's resources.
    public static func bundled() throws -> APIDocuments {
        APIDocuments(
            openAPI: try Self.resource("openapi", extension: "yaml"),
            docsPage: try Self.resource("docs", extension: "html"),
            statusPage: try Self.resource("status", extension: "html")
        )
    }

    private static func resource(_ name: String, extension pathExtension: String) throws -> String {
        guard
            let url = Bundle.module.url(forResource: name, withExtension: pathExtension, subdirectory: "Resources")
        else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "Resources/\(name).\(pathExtension)"])
        }
        return try String(contentsOf: url, encoding: .utf8)
    }
}
