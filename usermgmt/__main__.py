"""`python -m usermgmt` is the same as `usermgmt`."""

from usermgmt.cli.app import main

if __name__ == "__main__":
    main()
