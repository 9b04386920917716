from clapas.cli import main

main()
