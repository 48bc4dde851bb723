// Package loginflow serves Nextcloud Login Flow v2, with which DAVx⁵, the
// Nextcloud desktop and mobile apps and other Nextcloud-compatible clients
// obtain an app password through the browser instead of having a person
// copy one:
//
//  1. The client POSTs to {base}/index.php/login/v2 and gets a login URL
//     and a poll token.
//  2. The person opens the login URL, signs in and grants access (the
//     grant page is package settings' Options.LoginFlows, served by
//     [Flows.Pending], [Flows.Grant] and [Flows.Deny]).
//  3. The client POSTs token=T to {base}/login/v2/poll: 404 until granted,
//     then 200 once with the server, login name and app password.
//
// Tokens carry 256 random bits and are stored only as keyed hashes; a flow
// is single use and expires after 20 minutes; the granted app password is
// kept only sealed (HPKE) to a key derived from the poll token, so the
// store never holds a usable secret. A denied flow leaves nothing behind;
// an expired granted one has its app password revoked. Requests are
// limited per client address, and so are the flows one address starts per
// lifetime (Options.StartsPerLifetime), so that a few addresses cannot
// fill the bounded store of pending flows.
package loginflow
