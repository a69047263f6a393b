"""The embedded default stack (`make up`, `hark up`): the AWS emulator, the local API gateway, the
functions run from the built Lambda asset, and the workers on the CPU."""
