import Testing

@testable import Tunnel

@Suite struct ImpersonationHeadersTests {
    @Test func theVerifiedIdentityBecomesOneUserAndOneGroupFieldEach() {
        var headers = ImpersonationHeaders()
        for field in [
            HTTPField(TunnelProtocol.identityUserHeader, "alice@example.com"),
            HTTPField(TunnelProtocol.identityGroupHeader, "oidc:dev"), HTTPField("authorization", "Bearer x"),
            HTTPField(TunnelProtocol.identityGroupHeader, "oidc:ops"),
            HTTPField(TunnelProtocol.identityUserHeader, "mallory"),
        ] { headers.note(field) }
        #expect(headers.fields == [
            HTTPField("Impersonate-User", "alice@example.com"), HTTPField("Impersonate-Group", "oidc:dev"),
            HTTPField("Impersonate-Group", "oidc:ops"),
        ])
    }

    @Test func withoutAUserNothingIsImpersonated() {
        var headers = ImpersonationHeaders()
        headers.note(HTTPField(TunnelProtocol.identityGroupHeader, "system:masters"))
        #expect(headers.fields.isEmpty)
    }

    @Test func usersCannotSendTheTunnelHeadersOrImpersonationThemselves() {
        #expect(!HeaderRules.controllerForwards(TunnelProtocol.identityUserHeader))
        #expect(!HeaderRules.controllerForwards(TunnelProtocol.identityGroupHeader))
        #expect(!HeaderRules.controllerForwards("impersonate-user"))
        #expect(!HeaderRules.agentForwards(TunnelProtocol.identityUserHeader))
        #expect(!HeaderRules.agentForwards("impersonate-group"))
    }
}

@Suite struct ReservedImpersonationTests {
    @Test func systemGroupsAndUsersAreNeverImpersonated() {
        var headers = ImpersonationHeaders()
        for field in [HTTPField(TunnelProtocol.identityUserHeader, "alice@example.com"),
                      HTTPField(TunnelProtocol.identityGroupHeader, "system:masters"),
                      HTTPField(TunnelProtocol.identityGroupHeader, "SYSTEM:nodes"),
                      HTTPField(TunnelProtocol.identityGroupHeader, "oidc:dev")] {
            headers.note(field)
        }
        #expect(headers.fields == [HTTPField("Impersonate-User", "alice@example.com"),
                                   HTTPField("Impersonate-Group", "oidc:dev")])
        var admin = ImpersonationHeaders()
        admin.note(HTTPField(TunnelProtocol.identityUserHeader, "system:admin"))
        admin.note(HTTPField(TunnelProtocol.identityGroupHeader, "oidc:dev"))
        #expect(admin.fields.isEmpty)
    }
}
