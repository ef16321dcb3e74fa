import BerthBridge
import BerthCNI

CNIPlugin.bridge.main()
