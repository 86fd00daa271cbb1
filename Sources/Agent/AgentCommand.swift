import Dispatch
import Foundation
import Tunnel

/// porthole-agent: dials every configured controller and serves their streams against the configured services.
@main
struct AgentMain {
    static func main() async {
        signal(SIGPIPE, SIG_IGN)
        Allocator.tuneForProxying()
        let configuration: AgentConfiguration
        do {
            configuration = try AgentConfiguration.load(arguments: Array(CommandLine.arguments.dropFirst()))
        } catch ConfigurationError.helpRequested {
            print(Self.summary + "\n\n" + AgentConfiguration.usage)
            exit(0)
        } catch ConfigurationError.versionRequested(let command) {
            print(ConfigurationError.versionRequested(command: command))
            exit(0)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n\n\(AgentConfiguration.usage)\n".utf8))
            exit(64)
        }
        Log.configure(level: configuration.level, component: "agent")
        DescriptorLimit.raiseToHardLimit()
        do {
            let agent = try Agent(configuration: configuration)
            agent.start()
            await agent.run()
            // _exit, not a return: atexit handlers (OpenSSL's cleanup) must not race threads still running.
            _exit(0)
        } catch {
            Log.error("agent failed to start", ["error": "\(error)"])
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            // A bad services or credential file is bad input, like a bad flag; anything else is a runtime failure.
            exit(error is AgentError ? 64 : ConfigurationError.exitStatus(forStartupError: error))
        }
    }

    static let summary = """
        porthole-agent: keeps a tunnel open to each controller and forwards the requests that arrive on it to the
        services listed in the services file, with the agent's own credentials.
        """
}
