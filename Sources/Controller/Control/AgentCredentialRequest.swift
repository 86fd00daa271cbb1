import Tunnel

/// A validated `POST /api/v1/agent-credentials` body: the agent to issue a certificate for.
package struct AgentCredentialRequest: Equatable, Sendable {
    /// The agent's name, which its certificate's `spiffe://TRUST/agent/NAME` URI carries.
    package var agent: String

    /// A request for `agent`.
    package init(agent: String) {
        self.agent = agent
    }

    /// Parses `{"agent"}`.
    package init(json: [UInt8]) throws(ControlRequestError) {
        let body = try ControlRequestBody(json: json, allowed: ["agent"])
        self.agent = try body.name("agent")
    }
}
