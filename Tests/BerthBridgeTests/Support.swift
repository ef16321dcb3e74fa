import BerthTestSupport

/// The bridge tests' lab: berth-bridge runs in it unless a test names another plugin.
typealias Lab = PluginLab
