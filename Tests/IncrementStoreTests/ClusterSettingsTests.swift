import IncrementStore
import Testing

struct ClusterSettingsTests {
    @Test func nodesMustAgreeOnTheClusterShardCount() async throws {
        try await withMigratedStore { store, _, _ in
            try await store.agree(onClusterSetting: "cluster_shards", value: 64)
            try await store.agree(onClusterSetting: "cluster_shards", value: 64)
            await #expect(throws: StoreError.clusterSettingMismatch(name: "cluster_shards", cluster: 64, node: 32)) {
                try await store.agree(onClusterSetting: "cluster_shards", value: 32)
            }
        }
    }
}
