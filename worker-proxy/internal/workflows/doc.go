// Package workflows holds the test that lints the repository's GitHub
// Actions workflows with actionlint; it has no code of its own.
package workflows
