// error: method `into_output` is private
// A release's records leave only through a sealed outcome.
use xgate::outcome::Release;

pub fn leak(release: Release) -> xgate::outcome::ViewOutput {
    release.into_output()
}
