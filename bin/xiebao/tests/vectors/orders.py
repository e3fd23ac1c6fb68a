"""Independent EIP-712 / keystore implementation (eth-account) for Xiebao's order tests.

Modes:
  vectors <chain_id> <verifying_contract> <private_key_hex>   print test vectors as JSON
  operations <chain_id> <verifying_contract>                   print OrderOperation hashes as JSON
  recover <chain_id> <verifying_contract>                     read {kind, order} on stdin, print signer
  mnemonic <phrase> <index>                                   print the account's address
  encrypt <private_key_hex> <password>                        print a V3 keystore (scrypt)
  decrypt <keystore_path> <password>                          print the hex private key
"""
import json
import sys

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address

TYPES = {
    "app": ("AppOrder", [("app", "address"), ("appprice", "uint256"), ("volume", "uint256"), ("tag", "bytes32"),
                         ("datasetrestrict", "address"), ("workerpoolrestrict", "address"),
                         ("requesterrestrict", "address"), ("salt", "bytes32")]),
    "dataset": ("DatasetOrder", [("dataset", "address"), ("datasetprice", "uint256"), ("volume", "uint256"),
                                 ("tag", "bytes32"), ("apprestrict", "address"), ("workerpoolrestrict", "address"),
                                 ("requesterrestrict", "address"), ("salt", "bytes32")]),
    "workerpool": ("WorkerpoolOrder", [("workerpool", "address"), ("workerpoolprice", "uint256"),
                                       ("volume", "uint256"), ("tag", "bytes32"), ("category", "uint256"),
                                       ("trust", "uint256"), ("apprestrict", "address"),
                                       ("datasetrestrict", "address"), ("requesterrestrict", "address"),
                                       ("salt", "bytes32")]),
    "request": ("RequestOrder", [("app", "address"), ("appmaxprice", "uint256"), ("dataset", "address"),
                                 ("datasetmaxprice", "uint256"), ("workerpool", "address"),
                                 ("workerpoolmaxprice", "uint256"), ("requester", "address"), ("volume", "uint256"),
                                 ("tag", "bytes32"), ("category", "uint256"), ("trust", "uint256"),
                                 ("beneficiary", "address"), ("callback", "address"), ("params", "string"),
                                 ("salt", "bytes32")]),
}


def typed_data(kind, order, chain_id, verifying_contract):
    name, fields = TYPES[kind]
    message = {}
    for field, typ in fields:
        value = order[field]
        if typ == "uint256":
            value = int(value)
        elif typ == "address":
            value = to_checksum_address(value)
        message[field] = value
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            name: [{"name": f, "type": t} for f, t in fields],
        },
        "primaryType": name,
        "domain": {"name": "iExecODB", "version": "5.0.0", "chainId": chain_id,
                   "verifyingContract": to_checksum_address(verifying_contract)},
        "message": message,
    }


def addr(byte):
    return "0x" + byte * 20


ZERO = "0x" + "00" * 20
H0 = "0x" + "00" * 32


def orders():
    big = str(2**256 - 1)
    return [
        ("app", {"app": addr("a1"), "appprice": "0", "volume": 1000000, "tag": H0,
                 "datasetrestrict": ZERO, "workerpoolrestrict": ZERO, "requesterrestrict": ZERO,
                 "salt": "0x" + "11" * 32}),
        ("app", {"app": addr("Ab"), "appprice": big, "volume": big, "tag": "0x" + "00" * 30 + "01" + "03",
                 "datasetrestrict": addr("d1"), "workerpoolrestrict": addr("e2"), "requesterrestrict": addr("f3"),
                 "salt": "0x" + "ff" * 32}),
        ("dataset", {"dataset": addr("d4"), "datasetprice": "1000000000", "volume": 5, "tag": H0,
                     "apprestrict": addr("a1"), "workerpoolrestrict": ZERO, "requesterrestrict": ZERO,
                     "salt": "0x" + "22" * 32}),
        ("workerpool", {"workerpool": addr("e5"), "workerpoolprice": "4000000000", "volume": 40,
                        "tag": "0x" + "00" * 30 + "01" + "00", "category": 2, "trust": "100",
                        "apprestrict": ZERO, "datasetrestrict": ZERO, "requesterrestrict": addr("c0"),
                        "salt": "0x" + "33" * 32}),
        ("request", {"app": addr("a1"), "appmaxprice": "1000000000", "dataset": ZERO, "datasetmaxprice": 0,
                     "workerpool": ZERO, "workerpoolmaxprice": "5000000000", "requester": addr("c0"),
                     "volume": 100, "tag": H0, "category": 1, "trust": 1, "beneficiary": addr("c0"),
                     "callback": ZERO, "params": "", "salt": "0x" + "44" * 32}),
        ("request", {"app": addr("a1"), "appmaxprice": 7, "dataset": addr("d4"), "datasetmaxprice": 9,
                     "workerpool": addr("e5"), "workerpoolmaxprice": big, "requester": addr("c0"),
                     "volume": 3, "tag": "0x" + "00" * 31 + "05", "category": 4, "trust": 10000,
                     "beneficiary": addr("be"), "callback": addr("cb"),
                     "params": json.dumps({"iexec_args": "frame 1 — ünïcode", "iexec_input_files": ["https://x/y"]}),
                     "salt": "0x" + "55" * 32}),
    ]


def main():
    mode = sys.argv[1]
    if mode == "vectors":
        chain_id, verifying_contract, key = int(sys.argv[2]), sys.argv[3], sys.argv[4]
        out = []
        for kind, order in orders():
            message = encode_typed_data(full_message=typed_data(kind, order, chain_id, verifying_contract))
            signed = Account.sign_message(message, key)
            out.append({"kind": kind, "order": order, "hash": "0x" + signed.message_hash.hex().removeprefix("0x"),
                        "sign": "0x" + signed.signature.hex().removeprefix("0x"),
                        "signer": Account.from_key(key).address})
        print(json.dumps(out))
    elif mode == "operations":
        # hashes of {Kind}OrderOperation(order, operation) for every vector and both operations
        chain_id, verifying_contract = int(sys.argv[2]), sys.argv[3]
        out = []
        for kind, order in orders():
            inner = typed_data(kind, order, chain_id, verifying_contract)
            name = inner["primaryType"]
            for operation in (0, 1):
                full = {
                    "types": dict(inner["types"], **{name + "Operation": [
                        {"name": "order", "type": name}, {"name": "operation", "type": "uint256"}]}),
                    "primaryType": name + "Operation",
                    "domain": inner["domain"],
                    "message": {"order": inner["message"], "operation": operation},
                }
                signed = Account.sign_message(encode_typed_data(full_message=full), "0x" + "01" * 32)
                out.append({"kind": kind, "order": order, "operation": operation,
                            "hash": "0x" + signed.message_hash.hex().removeprefix("0x")})
        print(json.dumps(out))
    elif mode == "recover":
        chain_id, verifying_contract = int(sys.argv[2]), sys.argv[3]
        data = json.load(sys.stdin)
        message = encode_typed_data(full_message=typed_data(data["kind"], data["order"], chain_id, verifying_contract))
        print(Account.recover_message(message, signature=data["order"]["sign"]))
    elif mode == "mnemonic":
        Account.enable_unaudited_hdwallet_features()
        print(Account.from_mnemonic(sys.argv[2], account_path=f"m/44'/60'/0'/0/{int(sys.argv[3])}").address)
    elif mode == "encrypt":
        print(json.dumps(Account.encrypt(sys.argv[2], sys.argv[3], kdf="scrypt", iterations=2**12)))
    elif mode == "decrypt":
        with open(sys.argv[2]) as f:
            print("0x" + Account.decrypt(json.load(f), sys.argv[3]).hex().removeprefix("0x"))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
