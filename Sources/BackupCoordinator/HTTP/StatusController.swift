import BackupCore
import BackupHTTP
import BackupProtocol
import Hummingbird

/// `GET /v1/status` and `GET /v1/check` (operators): the site at a glance, and what each backup
/// node lacks.
struct StatusController {
    let coordinator: Coordinator

    func addRoutes(to router: Router<CoordinatorContext>) {
        let board = coordinator.statusBoard
        router.get("/v1/status") { _, context in
            _ = try context.requirePeer([.operator, .admin], for: "read the site's status")
            return try JSONResponse.make(try await board.status())
        }
        router.get("/v1/check") { _, context in
            _ = try context.requirePeer([.operator, .admin], for: "check the backup nodes' holdings")
            return try JSONResponse.make(try await board.check())
        }
    }
}
