import BerthCNI
import BerthHost

CNIPlugin.host.main()
