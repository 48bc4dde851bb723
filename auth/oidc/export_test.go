package oidc

const KeyRetryAfterFailure = keyRetryAfterFailure
