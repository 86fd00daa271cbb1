import Foundation
import Tunnel

/// make-ca: creates the Porthole CA, a control credential and agent credentials as PEM files and Secret YAML, or
/// adds agent credentials to an existing CA.

let options = CommandLineParser.exitOnUsageError(usage: MakeCAOptions.usage) {
    try MakeCAOptions(arguments: Array(CommandLine.arguments.dropFirst()))
}
let issuer = CredentialIssuer(options: options) { FileHandle.standardError.write(Data("note: \($0)\n".utf8)) }
do {
    for path in try issuer.run() { print(path) }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
