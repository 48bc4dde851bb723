//go:build !appauth_insecure_bench

package main

// insecureBenchBuild is false: a normal build cannot turn authentication off.
const insecureBenchBuild = false
