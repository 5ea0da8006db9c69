from relay.app import main
from runtime.settings import get_settings

if __name__ == "__main__":
    main(get_settings())
