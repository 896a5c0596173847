import Foundation

extension Migration {
    /// The migrations shipped with this module, in ascending version order.
    public static func bundled() throws -> [Migration] {
        guard let directory = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw StoreError.migrationsMissing
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        var migrations: [Migration] = []
        for file in files {
            let sql = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            if let migration = Migration(fileName: file, sql: sql) {
                migrations.append(migration)
            }
        }
        migrations.sort { $0.version < $1.version }
        for (earlier, later) in zip(migrations, migrations.dropFirst()) where earlier.version == later.version {
            throw StoreError.duplicateMigrationVersion(later.version)
        }
        return migrations
    }
}
