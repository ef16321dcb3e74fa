import BerthCNI
import BerthContainer

CNIPlugin.container.main()
