import Dispatch
import Foundation
import Tunnel

signal(SIGPIPE, SIG_IGN)
let options = CommandLineParser.exitOnUsageError(usage: BenchOptions.usage) {
    try BenchOptions(arguments: Array(CommandLine.arguments.dropFirst()))
}
Log.configure(level: .error, component: "bench-agents")
let descriptors = FileDescriptorLimit.raise(to: 2 * options.count + 4096)
let fleet: AgentFleet
do {
    fleet = try AgentFleet(options: options)
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(ConfigurationError.exitStatus(forStartupError: error))
}
fleet.emit(["event": "start", "pid": Int(getpid()), "openFiles": descriptors, "count": options.count])
fleet.startReporting(interval: 0.05)
do {
    try fleet.grow(to: options.count)
} catch {
    FileHandle.standardError.write(Data("error: issuing agent credentials: \(error)\n".utf8))
    exit(1)
}

// Commands on stdin: "target N" opens more tunnels; "quit" or end of input exits.
let commands = Thread {
    while let line = readLine() {
        let words = line.split(separator: " ")
        if words.first == "quit" { break }
        if words.count == 2, words[0] == "target", let count = Int(words[1]) {
            FileDescriptorLimit.raise(to: 2 * count + 4096)
            do { try fleet.grow(to: count) } catch {
                FileHandle.standardError.write(Data("error: issuing agent credentials: \(error)\n".utf8))
            }
        } else {
            FileHandle.standardError.write(Data("error: unknown command \"\(line)\" (target N | quit)\n".utf8))
        }
    }
    exit(0)
}
commands.start()
let signals = SignalWatcher(signals: [SIGTERM, SIGINT])
_ = await signals.next()
exit(0)
