// Package deploy is `worker-proxy deploy`, the one implementation behind
// deploy.sh, deploy.ps1 and deploy.bat. From the root of a KeyPool
// checkout it
//
//  1. checks git, the checkout and the GitHub repository to push to;
//  2. builds the dashboard into web/dist, so a broken build fails here and
//     not in Actions;
//  3. finds or creates the Cloudflare KV namespace, when an account id and
//     CF_API_TOKEN are given;
//  4. initialises git if needed, commits uncommitted work as a normal commit
//     and pushes to the branch — never forced;
//  5. prints the Pages URL and what is left to set up: repository settings,
//     the variable, the proxy host's environment and start command.
//
// It is safe to rerun: an existing namespace is found, nothing is committed
// when nothing changed, an up-to-date branch is not pushed. It asks
// nothing, so scripts and tests can drive it. The API token is read only
// from CF_API_TOKEN; it is never printed, never passed to a child process
// and never committed (a file that contains it stops the commit). With
// --dry-run it only reads: no files, no git state, no namespace.
package deploy
