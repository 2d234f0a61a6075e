import BackupTesting
import Foundation
import Testing

@testable import BackupCore

struct DNATests {
    private func example(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: Paths.protocolFolder + "/examples/" + name)))
    }

    @Test func theProtocolExampleDecodesAndReEncodesToTheSameValue() throws {
        let dna = try DNA.decode(try example("dna/folder.dna.json"), path: "folder.dna.json")
        #expect(dna.format == "scm-backup-dna/1")
        #expect(dna.artifact == "apache-confdir-bfeadfba5971.tar.gz")
        #expect(dna.size == 283)
        #expect(dna.origin == "demo-server")
        #expect(dna.kind == "folder")
        #expect(dna.revision == "bfeadfba5971")
        #expect(dna.created == Date(timeIntervalSince1970: 1_795_770_782))
        #expect(dna.digestsToCheck == .sha256)
        #expect(try DNA.decode(try dna.encoded(), path: "re-encoded") == dna)
        #expect(
            try dna.encoded() == (try example("dna/folder.dna.json")), "the example is exactly what the writer writes")
    }

    @Test func legacySidecarsWithAndWithoutTheLSuffixHaveEqualValues() throws {
        let withL = try DNA.decode(try example("dna/legacy-with-L.dna"), path: "with-L")
        let withoutL = try DNA.decode(try example("dna/legacy-without-L.dna"), path: "without-L")
        #expect(withL == withoutL)
        #expect(withL.isLegacy)
        #expect(withL.size == 1_915_051_630)
        #expect(withL.md5 == "7b87e78cc03ea544e2ad3abae46eecd1")
        #expect(withL.sha256 == nil)
        #expect(withL.digestsToCheck == .md5)
    }

    @Test(arguments: [
        #"{'size': 12L, 'dig': 'D41D8CD98F00B204E9800998ECF8427E'}"#,
        #"{"dig": "d41d8cd98f00b204e9800998ecf8427e", "size": 12}"#,
        "  {'dig':'d41d8cd98f00b204e9800998ecf8427e','size':12l,}  \n",
        #"{'dig': 'd41d8cd98f00b204e9800998ecf8427e', 'size': 12L, 'path': '/data/x.tar.gz'}"#,
    ])
    func legacyVariantsAreReadByValue(_ text: String) throws {
        let dna = try DNA.decode(Array(text.utf8), path: "x.dna")
        #expect(dna.size == 12)
        #expect(dna.md5 == "d41d8cd98f00b204e9800998ecf8427e")
    }

    @Test(arguments: [
        ("{'size': 12L}", "'dig' key is missing"),
        ("{'dig': 'xyz', 'size': 12L}", "not an MD5"),
        ("{'dig': 'd41d8cd98f00b204e9800998ecf8427e', 'size': -1}", "'size' is not a whole number"),
        ("{'dig': 'd41d8cd98f00b204e9800998ecf8427e', 'size': 12L", "expected '}'"),
        ("not a sidecar", "neither JSON nor a legacy dict"),
        (#"{"format": "scm-backup-dna/9", "size": 1}"#, "format 'scm-backup-dna/9'"),
        (#"{"size": 1}"#, "no \"format\" field"),
        (#"{"format": "scm-backup-dna/1", "artifact": "a", "size": 1}"#, "sha256"),
        (#"{"format": "scm-backup-dna/1", "artifact": "a", "size": "1", "sha256": "x"}"#, "field \"size\""),
    ])
    func badSidecarsAreRefusedNamingTheFileAndTheFault(_ text: String, _ fault: String) {
        let error = #expect(throws: BackupError.self) { try DNA.decode(Array(text.utf8), path: "/store/a.tar.gz.dna") }
        #expect(error?.code == .sidecarInvalid)
        #expect(error?.message.contains("/store/a.tar.gz.dna") == true)
        #expect(error?.message.contains(fault) == true, "\(error?.message ?? "") should mention \(fault)")
    }

    @Test func mismatchesCompareValuesOfTheDigestTheSidecarHas() {
        let legacy = try! DNA.decode(Array("{'dig': 'd41d8cd98f00b204e9800998ecf8427e', 'size': 0L}".utf8), path: "x")
        #expect(legacy.mismatches(ArtifactDigests(size: 0, sha256: nil, md5: "d41d8cd98f00b204e9800998ecf8427e")) == [])
        #expect(
            legacy.mismatches(ArtifactDigests(size: 1, sha256: nil, md5: "00000000000000000000000000000000")).count == 2
        )
        let modern = DNA(
            artifact: "a",
            digests: ArtifactDigests(
                size: 3, sha256: String(repeating: "a", count: 64), md5: String(repeating: "b", count: 32)),
            origin: "n", kind: "folder", source: "s", revision: "r", created: Date(timeIntervalSince1970: 0))
        // A new sidecar is verified by SHA-256 alone: a wrong MD5 field does not matter.
        #expect(modern.mismatches(ArtifactDigests(size: 3, sha256: String(repeating: "a", count: 64), md5: nil)) == [])
        #expect(
            modern.mismatches(ArtifactDigests(size: 3, sha256: String(repeating: "c", count: 64), md5: nil)).count == 1)
    }

    @Test func theStoreMarkerExampleDecodes() throws {
        let marker = try StoreMarker.decode(try example("store-marker.json"), path: "store-marker.json")
        #expect(marker.format == StoreMarker.currentFormat)
        #expect(marker.id == "af2c5892-0d5e-4e58-9ed8-49518cb3247d")
        #expect(try marker.encoded() == (try example("store-marker.json")))
    }
}
