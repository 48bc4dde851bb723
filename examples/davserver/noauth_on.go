//go:build appauth_insecure_bench

package main

// insecureBenchBuild is true in a build for make bench-peers: it has the
// -insecure-no-auth-as flag (see noauth.go).
const insecureBenchBuild = true
