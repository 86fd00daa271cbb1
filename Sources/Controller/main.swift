import Foundation
import Tunnel

signal(SIGPIPE, SIG_IGN)
Allocator.tuneForProxying()
let summary = """
    porthole-controller: accepts agent tunnels and routes users' requests to them by the identity in their \
    certificate or service token.
    """
let configuration: ControllerConfiguration
do {
    configuration = try ControllerConfiguration.load(arguments: Array(CommandLine.arguments.dropFirst()))
} catch ConfigurationError.helpRequested {
    print(summary + "\n\n" + ControllerConfiguration.usage)
    exit(0)
} catch ConfigurationError.versionRequested(let command) {
    print(ConfigurationError.versionRequested(command: command))
    exit(0)
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n\n\(ControllerConfiguration.usage)\n".utf8))
    exit(64)
}
Log.configure(level: LogLevel(name: configuration.logLevel) ?? .info, component: "controller")
DescriptorLimit.raiseToHardLimit()
let controller: Controller
do {
    controller = try Controller(configuration: configuration)
} catch {
    Log.error("controller failed to start", ["error": "\(error)"])
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(ConfigurationError.exitStatus(forStartupError: error))
}
controller.start()
let signals = SignalWatcher(signals: [SIGTERM, SIGINT, SIGHUP])
var received = SIGHUP
while received == SIGHUP {
    received = await signals.next()
    if received == SIGHUP {
        Log.info("SIGHUP: checking the credential files, reopening the audit log")
        controller.reloadIfChanged()
        controller.reopenAuditLog()
    }
}
Log.info("controller draining", ["signal": "\(received)"])
await controller.drain()
// _exit, not exit: atexit handlers (OpenSSL's cleanup) must not race connection threads that are still running.
_exit(0)
