"""Container runtimes: the node runs the runner through one `ContainerRuntime` Protocol."""
