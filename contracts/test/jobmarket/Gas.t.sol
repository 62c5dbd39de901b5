// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MarketFixture} from "../utils/MarketFixture.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";

/// @notice One typical job (about 300-byte spec) through submit, claim, deliver, settle, for the
///         gas report (`forge test --match-contract GasTest --gas-report`) and the snapshot.
contract GasTest is MarketFixture {
    uint256 internal jobId;
    IJobMarket.JobRequest internal request;
    bytes internal signature;

    function setUp() public override {
        super.setUp();
        // Warm, realistic accounts: the client already holds a free balance, the provider is bonded.
        _deposit(client, 10 * MAX_PRICE);
        _register(provider, 10 * MIN_BOND);
        request = _request(client, 1);
        signature = _sign(clientKey, request);
    }

    function test_gas_typicalJobLifecycle() public {
        assertEq(SPEC.length, 300, "typical spec");
        vm.prank(relayer);
        jobId = market.submitJob(request, SPEC, signature);
        vm.prank(provider);
        market.claimJob(jobId, PRICE);
        vm.prank(provider);
        market.deliver(jobId, _cid(), keccak256("video"), keccak256("frames"));
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        vm.prank(provider);
        market.settle(jobId);
        _assertState(jobId, IJobMarket.JobState.Settled);
    }
}
