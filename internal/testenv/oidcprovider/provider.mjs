// The OpenID provider of appauth's SSO tests: oidc-provider with its
// development login form (any password; the login is the subject), on
// 127.0.0.1. Test only: it lets back-channel logout tokens go to loopback
// addresses, which a real deployment must never do.
//
// Usage: node provider.mjs CONFIG.json
// CONFIG: {"port": N, "clients": [oidc-provider client metadata...], "keyID": "..."}
// With keyID, it signs with a new RSA key of that ID instead of
// oidc-provider's development keys (a key rotation).
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${cfg.port}`;
const keys = cfg.keyID && {
  jwks: {
    keys: [{ ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid: cfg.keyID, alg: 'RS256', use: 'sig' }],
  },
};

const provider = new Provider(issuer, {
  ...keys,
  clients: cfg.clients,
  // Claims in the ID token, as Keycloak and Dex send them.
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, name: id, email: `${id}@example.test`, email_verified: true };
      },
    };
  },
  // First-party client: no consent screen.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile email');
    await grant.save();
    return grant;
  },
  pkce: { required: () => true },
  cookies: { keys: ['appauth-test-only-cookie-key'] },
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  // Test only: oidc-provider refuses to post to loopback and private
  // addresses (SSRF protection); the relying party under test is on 127.0.0.1.
  fetch(url, options) {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
});
provider.on('backchannel.error', (client, err) => console.log(`backchannel.error ${client.clientId}: ${err.message}`));
provider.on('backchannel.success', (client) => console.log(`backchannel.success ${client.clientId}`));
provider.on('server_error', (ctx, err) => console.log(`server_error: ${err.stack}`));

const server = provider.listen(cfg.port, '127.0.0.1', () => console.log(`listening ${issuer}`));
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
